from services.common.runner import run_service

from .app import create_app
from .settings import GatewaySettings

run_service("gateway", GatewaySettings, create_app)
