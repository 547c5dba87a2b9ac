"""HTTP routes, one router per resource."""

from service.routes import admin, bundle, experiment, health, outcomes, rank

ROUTERS = (
    rank.router,
    outcomes.router,
    bundle.router,
    health.router,
    admin.router,
    experiment.router,
)

__all__ = ["ROUTERS"]
