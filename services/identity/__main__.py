from services.common.runner import run_service

from .app import create_app
from .settings import IdentitySettings

run_service("identity", IdentitySettings, create_app)
