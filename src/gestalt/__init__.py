"""gestalt: the Python SDK for writing Gestalt providers.

Everything a provider author needs is importable from here::

    from gestalt import Model, Plugin, field, operation
    from gestalt import Cache, IndexedDB, S3

The imports below are the one list of public names. Type checkers and PyInstaller read them
as written; at run time they are skipped and each name is imported from its module on first
use (PEP 562), so ``import gestalt`` pulls in neither gRPC nor the generated protobuf modules.
"""

from pkgutil import extend_path

# In a wheel, ``gestalt.gen`` sits inside this package; in a source checkout it lives in
# ``generated/gestalt/gen``. Extending the package path lets both layouts import it.
__path__ = extend_path(__path__, __name__)
del extend_path

from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:
    from gestalt._authoring.agents import AgentProvider as AgentProvider
    from gestalt._authoring.authorization import AuthorizationProvider as AuthorizationProvider
    from gestalt._authoring.hook_inputs import (
        ConnectedToken as ConnectedToken,
        HTTPSubjectRequest as HTTPSubjectRequest,
    )
    from gestalt._authoring.implicit import (
        http_subject as http_subject,
        operation as operation,
        post_connect as post_connect,
        session_catalog as session_catalog,
    )
    from gestalt._authoring.invoker import (
        AsyncPluginInvoker as AsyncPluginInvoker,
        GraphQLError as GraphQLError,
        GraphQLResponse as GraphQLResponse,
        GraphQLResponseError as GraphQLResponseError,
        InvocationError as InvocationError,
        InvokeResponse as InvokeResponse,
        PluginInvoker as PluginInvoker,
    )
    from gestalt._authoring.kinds import ProviderKind as ProviderKind
    from gestalt._authoring.model import (
        Model as Model,
        field as field,
    )
    from gestalt._authoring.plugin import (
        Plugin as Plugin,
        SessionCatalogProvider as SessionCatalogProvider,
    )
    from gestalt._authoring.plugin_runtime import PluginRuntimeProvider as PluginRuntimeProvider
    from gestalt._authoring.providers import (
        AuthenticationProvider as AuthenticationProvider,
        CacheProvider as CacheProvider,
        Closer as Closer,
        ExternalTokenValidator as ExternalTokenValidator,
        HealthChecker as HealthChecker,
        MetadataProvider as MetadataProvider,
        PluginProvider as PluginProvider,
        PluginProviderAdapter as PluginProviderAdapter,
        ProviderMetadata as ProviderMetadata,
        S3Provider as S3Provider,
        SecretsProvider as SecretsProvider,
        SessionTTLProvider as SessionTTLProvider,
        Starter as Starter,
        WarningsProvider as WarningsProvider,
    )
    from gestalt._authoring.request import (
        Access as Access,
        Credential as Credential,
        Request as Request,
        Subject as Subject,
    )
    from gestalt._authoring.response import (
        OK as OK,
        Error as Error,
        HTTPSubjectResolutionError as HTTPSubjectResolutionError,
        Response as Response,
        http_subject_error as http_subject_error,
    )
    from gestalt._authoring.workflows import WorkflowProvider as WorkflowProvider
    from gestalt._clients.agents import (
        AgentHost as AgentHost,
        AgentManager as AgentManager,
        AsyncAgentHost as AsyncAgentHost,
        AsyncAgentManager as AsyncAgentManager,
    )
    from gestalt._clients.authorization import (
        AsyncAuthorizationClient as AsyncAuthorizationClient,
        Authorization as Authorization,
        AuthorizationClient as AuthorizationClient,
    )
    from gestalt._clients.cache import (
        AsyncCache as AsyncCache,
        Cache as Cache,
    )
    from gestalt._clients.cache_types import CacheEntry as CacheEntry
    from gestalt._clients.errors import (
        AlreadyExistsError as AlreadyExistsError,
        HostServiceConfigError as HostServiceConfigError,
        HostServiceError as HostServiceError,
        HostServiceTimeoutError as HostServiceTimeoutError,
        InvalidTargetError as InvalidTargetError,
        NotFoundError as NotFoundError,
        S3HeaderValueError as S3HeaderValueError,
        S3InvalidRangeError as S3InvalidRangeError,
        S3NotFoundError as S3NotFoundError,
        S3PreconditionFailedError as S3PreconditionFailedError,
        TransactionError as TransactionError,
    )
    from gestalt._clients.indexeddb import (
        Cursor as Cursor,
        Index as Index,
        IndexedDB as IndexedDB,
        ObjectStore as ObjectStore,
        Transaction as Transaction,
        TransactionIndex as TransactionIndex,
        TransactionObjectStore as TransactionObjectStore,
    )
    from gestalt._clients.indexeddb_aio import (
        AsyncCursor as AsyncCursor,
        AsyncIndex as AsyncIndex,
        AsyncIndexedDB as AsyncIndexedDB,
        AsyncObjectStore as AsyncObjectStore,
        AsyncTransaction as AsyncTransaction,
        AsyncTransactionIndex as AsyncTransactionIndex,
        AsyncTransactionObjectStore as AsyncTransactionObjectStore,
    )
    from gestalt._clients.indexeddb_codec import (
        CURSOR_NEXT as CURSOR_NEXT,
        CURSOR_NEXT_UNIQUE as CURSOR_NEXT_UNIQUE,
        CURSOR_PREV as CURSOR_PREV,
        CURSOR_PREV_UNIQUE as CURSOR_PREV_UNIQUE,
    )
    from gestalt._clients.indexeddb_types import (
        IndexSchema as IndexSchema,
        KeyRange as KeyRange,
        ObjectStoreSchema as ObjectStoreSchema,
    )
    from gestalt._clients.runtime_log_handler import RuntimeLogHandler as RuntimeLogHandler
    from gestalt._clients.runtime_logs import (
        AsyncRuntimeLogHost as AsyncRuntimeLogHost,
        RuntimeLogHost as RuntimeLogHost,
    )
    from gestalt._clients.s3 import (
        S3 as S3,
        AsyncS3 as AsyncS3,
        AsyncS3Object as AsyncS3Object,
        S3Object as S3Object,
    )
    from gestalt._clients.s3_stream import (
        AsyncS3ReadStream as AsyncS3ReadStream,
        S3ReadStream as S3ReadStream,
    )
    from gestalt._clients.s3_types import (
        ByteRange as ByteRange,
        CopyOptions as CopyOptions,
        ListOptions as ListOptions,
        ListPage as ListPage,
        ObjectAccessURL as ObjectAccessURL,
        ObjectAccessURLOptions as ObjectAccessURLOptions,
        ObjectMeta as ObjectMeta,
        ObjectRef as ObjectRef,
        PresignMethod as PresignMethod,
        PresignOptions as PresignOptions,
        PresignResult as PresignResult,
        ReadOptions as ReadOptions,
        WriteOptions as WriteOptions,
    )
    from gestalt._clients.transport import (
        ENV_AGENT_HOST_SOCKET as ENV_AGENT_HOST_SOCKET,
        ENV_AGENT_HOST_SOCKET_TOKEN as ENV_AGENT_HOST_SOCKET_TOKEN,
        ENV_AGENT_MANAGER_SOCKET as ENV_AGENT_MANAGER_SOCKET,
        ENV_AGENT_MANAGER_SOCKET_TOKEN as ENV_AGENT_MANAGER_SOCKET_TOKEN,
        ENV_AUTHORIZATION_SOCKET as ENV_AUTHORIZATION_SOCKET,
        ENV_AUTHORIZATION_SOCKET_TOKEN as ENV_AUTHORIZATION_SOCKET_TOKEN,
        ENV_CACHE_SOCKET as ENV_CACHE_SOCKET,
        ENV_CACHE_SOCKET_TOKEN as ENV_CACHE_SOCKET_TOKEN,
        ENV_INDEXEDDB_SOCKET as ENV_INDEXEDDB_SOCKET,
        ENV_INDEXEDDB_SOCKET_TOKEN as ENV_INDEXEDDB_SOCKET_TOKEN,
        ENV_PLUGIN_INVOKER_SOCKET as ENV_PLUGIN_INVOKER_SOCKET,
        ENV_PLUGIN_INVOKER_SOCKET_TOKEN as ENV_PLUGIN_INVOKER_SOCKET_TOKEN,
        ENV_RUNTIME_LOG_SOCKET as ENV_RUNTIME_LOG_SOCKET,
        ENV_RUNTIME_LOG_SOCKET_TOKEN as ENV_RUNTIME_LOG_SOCKET_TOKEN,
        ENV_S3_SOCKET as ENV_S3_SOCKET,
        ENV_S3_SOCKET_TOKEN as ENV_S3_SOCKET_TOKEN,
        ENV_WORKFLOW_HOST_SOCKET as ENV_WORKFLOW_HOST_SOCKET,
        ENV_WORKFLOW_HOST_SOCKET_TOKEN as ENV_WORKFLOW_HOST_SOCKET_TOKEN,
        ENV_WORKFLOW_MANAGER_SOCKET as ENV_WORKFLOW_MANAGER_SOCKET,
        ENV_WORKFLOW_MANAGER_SOCKET_TOKEN as ENV_WORKFLOW_MANAGER_SOCKET_TOKEN,
        cache_socket_env as cache_socket_env,
        cache_socket_token_env as cache_socket_token_env,
        indexeddb_socket_env as indexeddb_socket_env,
        indexeddb_socket_token_env as indexeddb_socket_token_env,
        s3_socket_env as s3_socket_env,
        s3_socket_token_env as s3_socket_token_env,
    )
    from gestalt._clients.workflows import (
        AsyncWorkflowHost as AsyncWorkflowHost,
        AsyncWorkflowManager as AsyncWorkflowManager,
        WorkflowContext as WorkflowContext,
        WorkflowHost as WorkflowHost,
        WorkflowManager as WorkflowManager,
        agent_target as agent_target,
        plugin_target as plugin_target,
    )
    from gestalt.gen.v1.authentication_pb2 import (
        AuthenticatedUser as AuthenticatedUser,
        BeginLoginRequest as BeginLoginRequest,
        BeginLoginResponse as BeginLoginResponse,
        CompleteLoginRequest as CompleteLoginRequest,
    )
    from gestalt.gen.v1.plugin_pb2 import (
        Catalog as Catalog,
        CatalogOperation as CatalogOperation,
        CatalogParameter as CatalogParameter,
        OperationAnnotations as OperationAnnotations,
    )

else:  # Hidden from type checkers, so that a misspelt name is an error for them.

    def __getattr__(name: str) -> object:
        from gestalt._exports import public_names, resolve

        if name == "__all__":
            return public_names(__name__)
        value = resolve(__name__, name)
        globals()[name] = value  # later lookups bypass __getattr__
        return value

    def __dir__() -> list[str]:
        from gestalt._exports import public_names

        return public_names(__name__)
