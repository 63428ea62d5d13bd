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


def _defer_pure_python_messages() -> None:
    """Load protobuf's pure-Python message module only when something reads from it.

    protobuf's ``descriptor_pool`` and ``builder`` import ``internal.python_message`` whichever
    implementation runs, and with it ``text_format``, the pure-Python decoder, encoder and
    containers and ``pickle``: 16 modules, about 1 MiB and 8 ms of every provider's start-up.
    Under upb (protobuf's default) nothing reads from it, so with this it never runs; under
    the pure-Python implementation its first use loads it in full. The module is an
    :class:`importlib.util.LazyLoader` one, also set on its package, so that ``from
    google.protobuf.internal import python_message`` finds it without loading it. Nothing
    changes when protobuf's descriptors were imported before ``gestalt``.
    """
    import importlib.util
    import sys

    name = "google.protobuf.internal.python_message"
    if name in sys.modules or "google.protobuf.descriptor_pool" in sys.modules:
        return
    try:
        spec = importlib.util.find_spec(name)
    except ImportError:  # no protobuf: nothing to defer
        return
    if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
        return
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    package, _, attribute = name.rpartition(".")
    setattr(sys.modules[package], attribute, module)


_defer_pure_python_messages()

from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:
    from gestalt._authoring.agents import AgentProvider as AgentProvider
    from gestalt._authoring.authorization import AuthorizationProvider as AuthorizationProvider
    from gestalt._authoring.hook_inputs import ConnectedToken as ConnectedToken
    from gestalt._authoring.hook_inputs import HTTPSubjectRequest as HTTPSubjectRequest
    from gestalt._authoring.implicit import http_subject as http_subject
    from gestalt._authoring.implicit import operation as operation
    from gestalt._authoring.implicit import post_connect as post_connect
    from gestalt._authoring.implicit import session_catalog as session_catalog
    from gestalt._authoring.invoker import AsyncPluginInvoker as AsyncPluginInvoker
    from gestalt._authoring.invoker import GraphQLError as GraphQLError
    from gestalt._authoring.invoker import GraphQLResponse as GraphQLResponse
    from gestalt._authoring.invoker import GraphQLResponseError as GraphQLResponseError
    from gestalt._authoring.invoker import InvocationError as InvocationError
    from gestalt._authoring.invoker import InvokeResponse as InvokeResponse
    from gestalt._authoring.invoker import PluginInvoker as PluginInvoker
    from gestalt._authoring.kinds import ProviderKind as ProviderKind
    from gestalt._authoring.model import Model as Model
    from gestalt._authoring.model import field as field
    from gestalt._authoring.plugin import Plugin as Plugin
    from gestalt._authoring.plugin import SessionCatalogProvider as SessionCatalogProvider
    from gestalt._authoring.plugin_runtime import PluginRuntimeProvider as PluginRuntimeProvider
    from gestalt._authoring.providers import AuthenticationProvider as AuthenticationProvider
    from gestalt._authoring.providers import CacheProvider as CacheProvider
    from gestalt._authoring.providers import Closer as Closer
    from gestalt._authoring.providers import ExternalTokenValidator as ExternalTokenValidator
    from gestalt._authoring.providers import HealthChecker as HealthChecker
    from gestalt._authoring.providers import MetadataProvider as MetadataProvider
    from gestalt._authoring.providers import PluginProvider as PluginProvider
    from gestalt._authoring.providers import PluginProviderAdapter as PluginProviderAdapter
    from gestalt._authoring.providers import ProviderMetadata as ProviderMetadata
    from gestalt._authoring.providers import S3Provider as S3Provider
    from gestalt._authoring.providers import SecretsProvider as SecretsProvider
    from gestalt._authoring.providers import SessionTTLProvider as SessionTTLProvider
    from gestalt._authoring.providers import Starter as Starter
    from gestalt._authoring.providers import WarningsProvider as WarningsProvider
    from gestalt._authoring.request import Access as Access
    from gestalt._authoring.request import Credential as Credential
    from gestalt._authoring.request import Request as Request
    from gestalt._authoring.request import Subject as Subject
    from gestalt._authoring.response import OK as OK
    from gestalt._authoring.response import Error as Error
    from gestalt._authoring.response import HTTPSubjectResolutionError as HTTPSubjectResolutionError
    from gestalt._authoring.response import Response as Response
    from gestalt._authoring.response import http_subject_error as http_subject_error
    from gestalt._authoring.workflows import WorkflowProvider as WorkflowProvider
    from gestalt._clients.agents import AgentHost as AgentHost
    from gestalt._clients.agents import AgentManager as AgentManager
    from gestalt._clients.agents import AsyncAgentHost as AsyncAgentHost
    from gestalt._clients.agents import AsyncAgentManager as AsyncAgentManager
    from gestalt._clients.authorization import AsyncAuthorizationClient as AsyncAuthorizationClient
    from gestalt._clients.authorization import Authorization as Authorization
    from gestalt._clients.authorization import AuthorizationClient as AuthorizationClient
    from gestalt._clients.cache import AsyncCache as AsyncCache
    from gestalt._clients.cache import Cache as Cache
    from gestalt._clients.cache_types import CacheEntry as CacheEntry
    from gestalt._clients.errors import AlreadyExistsError as AlreadyExistsError
    from gestalt._clients.errors import HostServiceConfigError as HostServiceConfigError
    from gestalt._clients.errors import HostServiceError as HostServiceError
    from gestalt._clients.errors import HostServiceTimeoutError as HostServiceTimeoutError
    from gestalt._clients.errors import InvalidTargetError as InvalidTargetError
    from gestalt._clients.errors import NotFoundError as NotFoundError
    from gestalt._clients.errors import S3HeaderValueError as S3HeaderValueError
    from gestalt._clients.errors import S3InvalidRangeError as S3InvalidRangeError
    from gestalt._clients.errors import S3NotFoundError as S3NotFoundError
    from gestalt._clients.errors import S3PreconditionFailedError as S3PreconditionFailedError
    from gestalt._clients.errors import TransactionError as TransactionError
    from gestalt._clients.indexeddb import Cursor as Cursor
    from gestalt._clients.indexeddb import Index as Index
    from gestalt._clients.indexeddb import IndexedDB as IndexedDB
    from gestalt._clients.indexeddb import ObjectStore as ObjectStore
    from gestalt._clients.indexeddb import Transaction as Transaction
    from gestalt._clients.indexeddb import TransactionIndex as TransactionIndex
    from gestalt._clients.indexeddb import TransactionObjectStore as TransactionObjectStore
    from gestalt._clients.indexeddb_aio import AsyncCursor as AsyncCursor
    from gestalt._clients.indexeddb_aio import AsyncIndex as AsyncIndex
    from gestalt._clients.indexeddb_aio import AsyncIndexedDB as AsyncIndexedDB
    from gestalt._clients.indexeddb_aio import AsyncObjectStore as AsyncObjectStore
    from gestalt._clients.indexeddb_aio import AsyncTransaction as AsyncTransaction
    from gestalt._clients.indexeddb_aio import AsyncTransactionIndex as AsyncTransactionIndex
    from gestalt._clients.indexeddb_aio import (
        AsyncTransactionObjectStore as AsyncTransactionObjectStore,
    )
    from gestalt._clients.indexeddb_codec import CURSOR_NEXT as CURSOR_NEXT
    from gestalt._clients.indexeddb_codec import CURSOR_NEXT_UNIQUE as CURSOR_NEXT_UNIQUE
    from gestalt._clients.indexeddb_codec import CURSOR_PREV as CURSOR_PREV
    from gestalt._clients.indexeddb_codec import CURSOR_PREV_UNIQUE as CURSOR_PREV_UNIQUE
    from gestalt._clients.indexeddb_types import IndexSchema as IndexSchema
    from gestalt._clients.indexeddb_types import KeyRange as KeyRange
    from gestalt._clients.indexeddb_types import ObjectStoreSchema as ObjectStoreSchema
    from gestalt._clients.runtime_log_handler import RuntimeLogHandler as RuntimeLogHandler
    from gestalt._clients.runtime_logs import AsyncRuntimeLogHost as AsyncRuntimeLogHost
    from gestalt._clients.runtime_logs import RuntimeLogHost as RuntimeLogHost
    from gestalt._clients.s3 import S3 as S3
    from gestalt._clients.s3 import AsyncS3 as AsyncS3
    from gestalt._clients.s3 import AsyncS3Object as AsyncS3Object
    from gestalt._clients.s3 import S3Object as S3Object
    from gestalt._clients.s3_stream import AsyncS3ReadStream as AsyncS3ReadStream
    from gestalt._clients.s3_stream import S3ReadStream as S3ReadStream
    from gestalt._clients.s3_types import ByteRange as ByteRange
    from gestalt._clients.s3_types import CopyOptions as CopyOptions
    from gestalt._clients.s3_types import ListOptions as ListOptions
    from gestalt._clients.s3_types import ListPage as ListPage
    from gestalt._clients.s3_types import ObjectAccessURL as ObjectAccessURL
    from gestalt._clients.s3_types import ObjectAccessURLOptions as ObjectAccessURLOptions
    from gestalt._clients.s3_types import ObjectMeta as ObjectMeta
    from gestalt._clients.s3_types import ObjectRef as ObjectRef
    from gestalt._clients.s3_types import PresignMethod as PresignMethod
    from gestalt._clients.s3_types import PresignOptions as PresignOptions
    from gestalt._clients.s3_types import PresignResult as PresignResult
    from gestalt._clients.s3_types import ReadOptions as ReadOptions
    from gestalt._clients.s3_types import WriteOptions as WriteOptions
    from gestalt._clients.transport import ENV_AGENT_HOST_SOCKET as ENV_AGENT_HOST_SOCKET
    from gestalt._clients.transport import (
        ENV_AGENT_HOST_SOCKET_TOKEN as ENV_AGENT_HOST_SOCKET_TOKEN,
    )
    from gestalt._clients.transport import ENV_AGENT_MANAGER_SOCKET as ENV_AGENT_MANAGER_SOCKET
    from gestalt._clients.transport import (
        ENV_AGENT_MANAGER_SOCKET_TOKEN as ENV_AGENT_MANAGER_SOCKET_TOKEN,
    )
    from gestalt._clients.transport import ENV_AUTHORIZATION_SOCKET as ENV_AUTHORIZATION_SOCKET
    from gestalt._clients.transport import (
        ENV_AUTHORIZATION_SOCKET_TOKEN as ENV_AUTHORIZATION_SOCKET_TOKEN,
    )
    from gestalt._clients.transport import ENV_CACHE_SOCKET as ENV_CACHE_SOCKET
    from gestalt._clients.transport import ENV_CACHE_SOCKET_TOKEN as ENV_CACHE_SOCKET_TOKEN
    from gestalt._clients.transport import ENV_INDEXEDDB_SOCKET as ENV_INDEXEDDB_SOCKET
    from gestalt._clients.transport import ENV_INDEXEDDB_SOCKET_TOKEN as ENV_INDEXEDDB_SOCKET_TOKEN
    from gestalt._clients.transport import ENV_PLUGIN_INVOKER_SOCKET as ENV_PLUGIN_INVOKER_SOCKET
    from gestalt._clients.transport import (
        ENV_PLUGIN_INVOKER_SOCKET_TOKEN as ENV_PLUGIN_INVOKER_SOCKET_TOKEN,
    )
    from gestalt._clients.transport import ENV_RUNTIME_LOG_SOCKET as ENV_RUNTIME_LOG_SOCKET
    from gestalt._clients.transport import (
        ENV_RUNTIME_LOG_SOCKET_TOKEN as ENV_RUNTIME_LOG_SOCKET_TOKEN,
    )
    from gestalt._clients.transport import ENV_S3_SOCKET as ENV_S3_SOCKET
    from gestalt._clients.transport import ENV_S3_SOCKET_TOKEN as ENV_S3_SOCKET_TOKEN
    from gestalt._clients.transport import ENV_WORKFLOW_HOST_SOCKET as ENV_WORKFLOW_HOST_SOCKET
    from gestalt._clients.transport import (
        ENV_WORKFLOW_HOST_SOCKET_TOKEN as ENV_WORKFLOW_HOST_SOCKET_TOKEN,
    )
    from gestalt._clients.transport import (
        ENV_WORKFLOW_MANAGER_SOCKET as ENV_WORKFLOW_MANAGER_SOCKET,
    )
    from gestalt._clients.transport import (
        ENV_WORKFLOW_MANAGER_SOCKET_TOKEN as ENV_WORKFLOW_MANAGER_SOCKET_TOKEN,
    )
    from gestalt._clients.transport import cache_socket_env as cache_socket_env
    from gestalt._clients.transport import cache_socket_token_env as cache_socket_token_env
    from gestalt._clients.transport import indexeddb_socket_env as indexeddb_socket_env
    from gestalt._clients.transport import indexeddb_socket_token_env as indexeddb_socket_token_env
    from gestalt._clients.transport import s3_socket_env as s3_socket_env
    from gestalt._clients.transport import s3_socket_token_env as s3_socket_token_env
    from gestalt._clients.workflows import AsyncWorkflowHost as AsyncWorkflowHost
    from gestalt._clients.workflows import AsyncWorkflowManager as AsyncWorkflowManager
    from gestalt._clients.workflows import WorkflowContext as WorkflowContext
    from gestalt._clients.workflows import WorkflowHost as WorkflowHost
    from gestalt._clients.workflows import WorkflowManager as WorkflowManager
    from gestalt._clients.workflows import agent_target as agent_target
    from gestalt._clients.workflows import plugin_target as plugin_target
    from gestalt.gen.v1.authentication_pb2 import AuthenticatedUser as AuthenticatedUser
    from gestalt.gen.v1.authentication_pb2 import BeginLoginRequest as BeginLoginRequest
    from gestalt.gen.v1.authentication_pb2 import BeginLoginResponse as BeginLoginResponse
    from gestalt.gen.v1.authentication_pb2 import CompleteLoginRequest as CompleteLoginRequest
    from gestalt.gen.v1.plugin_pb2 import Catalog as Catalog
    from gestalt.gen.v1.plugin_pb2 import CatalogOperation as CatalogOperation
    from gestalt.gen.v1.plugin_pb2 import CatalogParameter as CatalogParameter
    from gestalt.gen.v1.plugin_pb2 import OperationAnnotations as OperationAnnotations

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
