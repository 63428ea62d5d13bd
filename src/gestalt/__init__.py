"""gestalt: the Python SDK for writing Gestalt providers."""

from pkgutil import extend_path

# In a wheel, ``gestalt.gen`` sits inside this package. In a source checkout it lives
# in ``generated/gestalt/gen``; extending the package path lets both layouts import it.
__path__ = extend_path(__path__, __name__)
