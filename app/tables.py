"""Imports every module that declares tables, so that Base.metadata holds them all (Alembic's
env.py and the schema tests read it). A domain with tables of its own adds its module here."""

from app import models  # noqa: F401
from app.activities import models as activity_models  # noqa: F401
from app.alerts import models as alert_models  # noqa: F401
from app.chat import models as chat_models  # noqa: F401
from app.connections import models as connection_models  # noqa: F401
from app.contacts import models as contact_models  # noqa: F401
from app.deals import models as deal_models  # noqa: F401
from app.quotas import models as quota_models  # noqa: F401
from app.signin import models as signin_models  # noqa: F401
from app.webhooks import models as webhook_models  # noqa: F401
