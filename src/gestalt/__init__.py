"""gestalt: the Python SDK for writing Gestalt providers.

Everything a provider author needs is importable from here::

    from gestalt import Model, Plugin, field, operation

Names load lazily on first use (PEP 562), so ``import gestalt`` does not pull in gRPC or the
generated protobuf modules; the ``TYPE_CHECKING`` block below shows type checkers (and
PyInstaller's import scanner) where each name lives.
"""

from pkgutil import extend_path

# In a wheel, ``gestalt.gen`` sits inside this package. In a source checkout it lives
# in ``generated/gestalt/gen``; extending the package path lets both layouts import it.
__path__ = extend_path(__path__, __name__)

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gestalt._implicit import http_subject, operation, post_connect, session_catalog
    from gestalt._model import Model, field
    from gestalt._plugin import Plugin, SessionCatalogProvider
    from gestalt._providers import (
        AuthenticationProvider,
        CacheProvider,
        Closer,
        ExternalTokenValidator,
        HealthChecker,
        MetadataProvider,
        PluginProvider,
        PluginProviderAdapter,
        ProviderKind,
        ProviderMetadata,
        S3Provider,
        SecretsProvider,
        SessionTTLProvider,
        WarningsProvider,
    )
    from gestalt._request import (
        OK,
        Access,
        ConnectedToken,
        Credential,
        Error,
        HTTPSubjectRequest,
        HTTPSubjectResolutionError,
        Request,
        Response,
        Subject,
        http_subject_error,
    )
    from gestalt.gen.v1.authentication_pb2 import (
        AuthenticatedUser,
        BeginLoginRequest,
        BeginLoginResponse,
        CompleteLoginRequest,
    )
    from gestalt.gen.v1.plugin_pb2 import (
        Catalog,
        CatalogOperation,
        CatalogParameter,
        OperationAnnotations,
    )

_AUTH_PB2 = "gestalt.gen.v1.authentication_pb2"
_CATALOG = "gestalt.gen.v1.plugin_pb2"
_IMPLICIT = "gestalt._implicit"
_MODEL = "gestalt._model"
_PLUGIN = "gestalt._plugin"
_PROVIDERS = "gestalt._providers"
_REQUEST = "gestalt._request"

# Public name -> module defining it. Names from later work (provider kinds such as
# CacheProvider, host-service clients such as Cache, IndexedDB and S3) are added here, in the
# TYPE_CHECKING block above and in __all__ when they are implemented.
_EXPORTS: dict[str, str] = {
    # core authoring types
    "Access": _REQUEST,
    "ConnectedToken": _REQUEST,
    "Credential": _REQUEST,
    "Error": _REQUEST,
    "HTTPSubjectRequest": _REQUEST,
    "HTTPSubjectResolutionError": _REQUEST,
    "Model": _MODEL,
    "OK": _REQUEST,
    "Request": _REQUEST,
    "Response": _REQUEST,
    "Subject": _REQUEST,
    "field": _MODEL,
    "http_subject_error": _REQUEST,
    # plugin authoring
    "Plugin": _PLUGIN,
    "SessionCatalogProvider": _PLUGIN,
    "http_subject": _IMPLICIT,
    "operation": _IMPLICIT,
    "post_connect": _IMPLICIT,
    "session_catalog": _IMPLICIT,
    # provider kinds
    "AuthenticationProvider": _PROVIDERS,
    "CacheProvider": _PROVIDERS,
    "Closer": _PROVIDERS,
    "ExternalTokenValidator": _PROVIDERS,
    "HealthChecker": _PROVIDERS,
    "MetadataProvider": _PROVIDERS,
    "PluginProvider": _PROVIDERS,
    "PluginProviderAdapter": _PROVIDERS,
    "ProviderKind": _PROVIDERS,
    "ProviderMetadata": _PROVIDERS,
    "S3Provider": _PROVIDERS,
    "SecretsProvider": _PROVIDERS,
    "SessionTTLProvider": _PROVIDERS,
    "WarningsProvider": _PROVIDERS,
    # auth protocol messages, re-exported from the generated code
    "AuthenticatedUser": _AUTH_PB2,
    "BeginLoginRequest": _AUTH_PB2,
    "BeginLoginResponse": _AUTH_PB2,
    "CompleteLoginRequest": _AUTH_PB2,
    # catalog protocol messages, re-exported from the generated code
    "Catalog": _CATALOG,
    "CatalogOperation": _CATALOG,
    "CatalogParameter": _CATALOG,
    "OperationAnnotations": _CATALOG,
}

__all__ = [
    "OK",
    "Access",
    "AuthenticatedUser",
    "AuthenticationProvider",
    "BeginLoginRequest",
    "BeginLoginResponse",
    "CacheProvider",
    "Catalog",
    "CatalogOperation",
    "CatalogParameter",
    "Closer",
    "CompleteLoginRequest",
    "ConnectedToken",
    "Credential",
    "Error",
    "ExternalTokenValidator",
    "HTTPSubjectRequest",
    "HTTPSubjectResolutionError",
    "HealthChecker",
    "MetadataProvider",
    "Model",
    "OperationAnnotations",
    "Plugin",
    "PluginProvider",
    "PluginProviderAdapter",
    "ProviderKind",
    "ProviderMetadata",
    "Request",
    "Response",
    "S3Provider",
    "SecretsProvider",
    "SessionCatalogProvider",
    "SessionTTLProvider",
    "Subject",
    "WarningsProvider",
    "field",
    "http_subject",
    "http_subject_error",
    "operation",
    "post_connect",
    "session_catalog",
]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'gestalt' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later lookups bypass __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
