from services.common.runner import run_service

from .app import create_app
from .settings import SessionSettings

run_service("session", SessionSettings, create_app)
