"""Every model, imported here so Alembic sees the whole metadata."""

from portal.models.audit import AuditEvent
from portal.models.autosync import AutoSyncCompany, AutoSyncType
from portal.models.batch import (
                                 Batch,
                                 BatchItem,
                                 BatchItemEvent,
                                 BatchStatus,
                                 BatchType,
                                 ItemState,
)
from portal.models.connection import (
                                 Company,
                                 CompanyStatus,
                                 CwConnection,
                                 PermissionProbe,
                                 QboApp,
                                 QboToken,
)
from portal.models.email import EmailLog, EmailStatus, Notification, SmtpSettings
from portal.models.external_write import ExternalWrite, WriteStatus
from portal.models.job_run import JobRun, RunKind, RunStatus
from portal.models.mapping import MappingOverride, MappingScan, MappingValue
from portal.models.record_memory import RecordMemory
from portal.models.reference import CwRef, QboRef, RefFetch
from portal.models.settings import (
                                 CurrencyMapping,
                                 ItemTypeMapping,
                                 SettingsVersion,
                                 StoredSettings,
                                 TaxCodeMapping,
)
from portal.models.unbatch import UnbatchRequest, ValidationReport
from portal.models.attention import AttentionItem
from portal.models.payments import (PaymentItem, PaymentLink, PaymentSeen,
                                    PaymentStatus, PaymentSyncState, WebhookConfig,
                                    WebhookEvent)
from portal.models.user import PasswordReset, Role, User, UserSession

__all__ = ["AuditEvent", "Batch", "BatchItem", "BatchItemEvent", "BatchStatus", "BatchType",
           "ItemState", "Company", "CompanyStatus", "CwConnection", "CwRef", "ExternalWrite", "JobRun",
           "PasswordReset", "PermissionProbe", "QboApp", "QboRef", "QboToken", "RecordMemory", "RefFetch",
           "Role", "RunKind", "RunStatus", "User", "UserSession", "MappingOverride", "MappingScan",
           "MappingValue",
           "CurrencyMapping", "ItemTypeMapping", "SettingsVersion", "StoredSettings",
           "TaxCodeMapping", "WriteStatus", "AutoSyncCompany", "AutoSyncType", "EmailLog",
           "EmailStatus", "Notification", "SmtpSettings", "UnbatchRequest", "ValidationReport",
           "AttentionItem", "PaymentItem", "PaymentLink", "PaymentSeen", "PaymentStatus",
           "PaymentSyncState", "WebhookConfig", "WebhookEvent"]
