# The AWS Labs reference server, started with botocore's host prefix off
# (tests/reference/side-by-side.sh runs it).
# Runs the AWS Labs reference server with botocore's host prefix off, as
# any client of a local endpoint must (runtime-127.0.0.1 does not resolve).
import botocore.config
_init = botocore.config.Config.__init__
def _patched(self, *args, **kwargs):
    kwargs.setdefault("inject_host_prefix", False)
    _init(self, *args, **kwargs)
botocore.config.Config.__init__ = _patched
from awslabs.healthimaging_mcp_server.server import main
main()
