"""gestalt: the Python SDK for writing Gestalt providers.

Everything a provider author needs is importable from here::

    from gestalt import Model, Plugin, field, operation
    from gestalt import Cache, IndexedDB, S3

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
    from gestalt._cache import (
        AsyncCache,
        Cache,
        CacheEntry,
    )
    from gestalt._errors import (
        AlreadyExistsError,
        HostServiceConfigError,
        HostServiceError,
        HostServiceTimeoutError,
        InvalidTargetError,
        NotFoundError,
        S3InvalidRangeError,
        S3NotFoundError,
        S3PreconditionFailedError,
        TransactionError,
    )
    from gestalt._implicit import (
        http_subject,
        operation,
        post_connect,
        session_catalog,
    )
    from gestalt._model import (
        Model,
        field,
    )
    from gestalt._plugin import (
        Plugin,
        SessionCatalogProvider,
    )
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
    from gestalt._transport import (
        ENV_CACHE_SOCKET,
        ENV_CACHE_SOCKET_TOKEN,
        ENV_INDEXEDDB_SOCKET,
        ENV_INDEXEDDB_SOCKET_TOKEN,
        ENV_S3_SOCKET,
        ENV_S3_SOCKET_TOKEN,
        cache_socket_env,
        cache_socket_token_env,
        indexeddb_socket_env,
        indexeddb_socket_token_env,
        s3_socket_env,
        s3_socket_token_env,
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

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "AsyncCache": "gestalt._cache",
    "Cache": "gestalt._cache",
    "CacheEntry": "gestalt._cache",
    "AlreadyExistsError": "gestalt._errors",
    "HostServiceConfigError": "gestalt._errors",
    "HostServiceError": "gestalt._errors",
    "HostServiceTimeoutError": "gestalt._errors",
    "InvalidTargetError": "gestalt._errors",
    "NotFoundError": "gestalt._errors",
    "S3InvalidRangeError": "gestalt._errors",
    "S3NotFoundError": "gestalt._errors",
    "S3PreconditionFailedError": "gestalt._errors",
    "TransactionError": "gestalt._errors",
    "http_subject": "gestalt._implicit",
    "operation": "gestalt._implicit",
    "post_connect": "gestalt._implicit",
    "session_catalog": "gestalt._implicit",
    "Model": "gestalt._model",
    "field": "gestalt._model",
    "Plugin": "gestalt._plugin",
    "SessionCatalogProvider": "gestalt._plugin",
    "AuthenticationProvider": "gestalt._providers",
    "CacheProvider": "gestalt._providers",
    "Closer": "gestalt._providers",
    "ExternalTokenValidator": "gestalt._providers",
    "HealthChecker": "gestalt._providers",
    "MetadataProvider": "gestalt._providers",
    "PluginProvider": "gestalt._providers",
    "PluginProviderAdapter": "gestalt._providers",
    "ProviderKind": "gestalt._providers",
    "ProviderMetadata": "gestalt._providers",
    "S3Provider": "gestalt._providers",
    "SecretsProvider": "gestalt._providers",
    "SessionTTLProvider": "gestalt._providers",
    "WarningsProvider": "gestalt._providers",
    "Access": "gestalt._request",
    "ConnectedToken": "gestalt._request",
    "Credential": "gestalt._request",
    "Error": "gestalt._request",
    "HTTPSubjectRequest": "gestalt._request",
    "HTTPSubjectResolutionError": "gestalt._request",
    "OK": "gestalt._request",
    "Request": "gestalt._request",
    "Response": "gestalt._request",
    "Subject": "gestalt._request",
    "http_subject_error": "gestalt._request",
    "ENV_CACHE_SOCKET": "gestalt._transport",
    "ENV_CACHE_SOCKET_TOKEN": "gestalt._transport",
    "ENV_INDEXEDDB_SOCKET": "gestalt._transport",
    "ENV_INDEXEDDB_SOCKET_TOKEN": "gestalt._transport",
    "ENV_S3_SOCKET": "gestalt._transport",
    "ENV_S3_SOCKET_TOKEN": "gestalt._transport",
    "cache_socket_env": "gestalt._transport",
    "cache_socket_token_env": "gestalt._transport",
    "indexeddb_socket_env": "gestalt._transport",
    "indexeddb_socket_token_env": "gestalt._transport",
    "s3_socket_env": "gestalt._transport",
    "s3_socket_token_env": "gestalt._transport",
    "AuthenticatedUser": "gestalt.gen.v1.authentication_pb2",
    "BeginLoginRequest": "gestalt.gen.v1.authentication_pb2",
    "BeginLoginResponse": "gestalt.gen.v1.authentication_pb2",
    "CompleteLoginRequest": "gestalt.gen.v1.authentication_pb2",
    "Catalog": "gestalt.gen.v1.plugin_pb2",
    "CatalogOperation": "gestalt.gen.v1.plugin_pb2",
    "CatalogParameter": "gestalt.gen.v1.plugin_pb2",
    "OperationAnnotations": "gestalt.gen.v1.plugin_pb2",
}

__all__ = [
    "ENV_CACHE_SOCKET",
    "ENV_CACHE_SOCKET_TOKEN",
    "ENV_INDEXEDDB_SOCKET",
    "ENV_INDEXEDDB_SOCKET_TOKEN",
    "ENV_S3_SOCKET",
    "ENV_S3_SOCKET_TOKEN",
    "OK",
    "Access",
    "AlreadyExistsError",
    "AsyncCache",
    "AuthenticatedUser",
    "AuthenticationProvider",
    "BeginLoginRequest",
    "BeginLoginResponse",
    "Cache",
    "CacheEntry",
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
    "HostServiceConfigError",
    "HostServiceError",
    "HostServiceTimeoutError",
    "InvalidTargetError",
    "MetadataProvider",
    "Model",
    "NotFoundError",
    "OperationAnnotations",
    "Plugin",
    "PluginProvider",
    "PluginProviderAdapter",
    "ProviderKind",
    "ProviderMetadata",
    "Request",
    "Response",
    "S3InvalidRangeError",
    "S3NotFoundError",
    "S3PreconditionFailedError",
    "S3Provider",
    "SecretsProvider",
    "SessionCatalogProvider",
    "SessionTTLProvider",
    "Subject",
    "TransactionError",
    "WarningsProvider",
    "cache_socket_env",
    "cache_socket_token_env",
    "field",
    "http_subject",
    "http_subject_error",
    "indexeddb_socket_env",
    "indexeddb_socket_token_env",
    "operation",
    "post_connect",
    "s3_socket_env",
    "s3_socket_token_env",
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
