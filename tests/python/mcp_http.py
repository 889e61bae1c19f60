"""The official MCP Python SDK's streamable HTTP client against
`healthimaging-mcp serve --transport http`, with a bearer token.

Run by server/tests/http.rs with MCP_URL and MCP_TOKEN set. Exits non-zero
on the first failure.
"""

import asyncio
import os

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

URL = os.environ["MCP_URL"]
TOKEN = os.environ["MCP_TOKEN"]


async def main():
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
        async with streamable_http_client(URL, http_client=http) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                assert init.server_info.name == "healthimaging-mcp", init.server_info
                tools = await session.list_tools()
                names = {t.name for t in tools.tools}
                assert len(names) == 44, len(names)
                assert "start_dicom_export_job" in names
                listed = await session.call_tool("list_datastores", {})
                assert not listed.is_error, listed
                structured = listed.structured_content
                assert structured["count"] == 1, structured
                assert structured["datastores"][0]["datastore_name"] == "ci", structured
    print("mcp http: all checks passed")


asyncio.run(main())
