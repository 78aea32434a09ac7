"""A FastMCP server (the Python MCP SDK 1.x) that is its own OAuth authorization server, with the
SDK's own auth routes (metadata, registration, authorize, token: its PKCE check and redirect URI
matching) over an in-memory provider that approves every authorization at once, as the SDK's
examples and tests do.

Usage: python auth_server.py MODE PORT OPERATOR_TOKEN, with MODE:
  vulnerable  tokens are not bound to the resource they were requested for (RFC 8707): a
              token requested for another service works here.
  fixed       a token works here only if it was requested for this server.
OPERATOR_TOKEN is an access token for this server, for the harness's own calls.

It serves Streamable HTTP on 127.0.0.1:PORT/mcp and prints uvicorn's address on stderr.
"""

import secrets
import sys
import time

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    construct_redirect_uri,
)
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions
from mcp.server.fastmcp import FastMCP
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

MODE = sys.argv[1]
PORT = int(sys.argv[2])
OPERATOR_TOKEN = sys.argv[3]
ISSUER = f"http://127.0.0.1:{PORT}"
RESOURCE = f"{ISSUER}/mcp"


class InMemoryProvider:
    def __init__(self):
        self.clients = {}
        self.codes = {}
        self.tokens = {
            OPERATOR_TOKEN: AccessToken(token=OPERATOR_TOKEN, client_id="operator", scopes=[], resource=RESOURCE)
        }

    async def get_client(self, client_id):
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull):
        self.clients[client_info.client_id] = client_info

    async def authorize(self, client, params: AuthorizationParams) -> str:
        code = secrets.token_urlsafe(32)
        self.codes[code] = AuthorizationCode(
            code=code,
            scopes=params.scopes or [],
            expires_at=time.time() + 60,
            client_id=client.client_id,
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
        )
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(self, client, authorization_code):
        code = self.codes.get(authorization_code)
        return code if code and code.client_id == client.client_id else None

    async def exchange_authorization_code(self, client, authorization_code):
        self.codes.pop(authorization_code.code, None)
        token = secrets.token_urlsafe(32)
        self.tokens[token] = AccessToken(
            token=token,
            client_id=client.client_id,
            scopes=authorization_code.scopes,
            expires_at=int(time.time()) + 3600,
            resource=authorization_code.resource,
        )
        return OAuthToken(access_token=token, token_type="Bearer", expires_in=3600)

    async def load_access_token(self, token):
        access = self.tokens.get(token)
        if access is None:
            return None
        if MODE == "fixed" and access.resource != RESOURCE:
            return None
        return access

    async def load_refresh_token(self, client, refresh_token):
        return None

    async def exchange_refresh_token(self, client, refresh_token, scopes):
        raise NotImplementedError

    async def revoke_token(self, token):
        self.tokens.pop(getattr(token, "token", None), None)


mcp = FastMCP(
    "auth-server-fake",
    host="127.0.0.1",
    port=PORT,
    auth_server_provider=InMemoryProvider(),
    auth=AuthSettings(
        issuer_url=ISSUER,
        resource_server_url=RESOURCE,
        client_registration_options=ClientRegistrationOptions(enabled=True),
    ),
)


@mcp.tool()
def echo(text: str) -> str:
    """Returns the text."""
    return text


if __name__ == "__main__":
    mcp.run(transport="streamable-http")
