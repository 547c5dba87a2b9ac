"""HTTP routes, one router per resource."""

from service.routes import admin, bundle, health, rank

ROUTERS = (rank.router, bundle.router, health.router, admin.router)

__all__ = ["ROUTERS"]
