"""A faithful, offline emulator of the Clipia queue API (an ASGI app).

Use :class:`Emulator` for the state and :func:`create_app` for the ASGI app;
:class:`EmulatorServer` runs it on a loopback port.
"""

from clipia_mcp.sandbox.app import create_app
from clipia_mcp.sandbox.faults import Fault
from clipia_mcp.sandbox.runner import EmulatorServer
from clipia_mcp.sandbox.state import Emulator, EmulatorConfig

__all__ = ["Emulator", "EmulatorConfig", "EmulatorServer", "Fault", "create_app"]
