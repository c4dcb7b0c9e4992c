"""A relying party built on Authlib's OpenID Connect client, unmodified: the
same OAuth2 app + OpenID mixin that Authlib's Flask, Django and Starlette
integrations are made of, with a stand-in for the web framework (this script
has no web server: tests/http/oidc_rp_authlib.test.mjs is the browser).

Usage: authlib_rp.py ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI
Protocol on stdio, one JSON object per line:
  out {"authorize": URL}       the URL the browser is sent to
  in  {"callback": URL}        where the browser came back to the RP
  out {"ok": true, ...}        what the RP learned (claims, userinfo, refresh)
Any failed check raises: a traceback on stderr and exit status 1.
"""

import json
import sys
from urllib.parse import parse_qs, urlparse

from authlib.integrations.base_client import BaseApp, OAuth2Mixin, OpenIDMixin
from authlib.integrations.requests_client import OAuth2Session


class Framework:
    """The framework seam: Authlib calls it when tokens change."""

    def update_token(self, token, refresh_token=None, access_token=None):
        pass


class RelyingParty(OAuth2Mixin, OpenIDMixin, BaseApp):
    client_cls = OAuth2Session


def send(obj):
    print(json.dumps(obj), flush=True)


def receive():
    line = sys.stdin.readline()
    if not line:
        raise SystemExit("no callback from the browser")
    return json.loads(line)


def main():
    issuer, client_id, client_secret, redirect_uri = sys.argv[1:5]
    rp = RelyingParty(
        Framework(),
        name="platform",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        # PKCE S256 and client_secret_basic (Authlib's default client auth).
        client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256"},
    )
    metadata = rp.load_server_metadata()
    assert metadata["issuer"] == issuer, metadata["issuer"]
    assert "S256" in metadata["code_challenge_methods_supported"]

    # Authlib adds a nonce by itself because the scope has openid.
    request = rp.create_authorization_url(redirect_uri)
    assert request["nonce"] and request["code_verifier"]
    send({"authorize": request["url"]})

    callback = urlparse(receive()["callback"])
    params = {k: v[0] for k, v in parse_qs(callback.query).items()}
    assert params.get("state") == request["state"], "state mismatch"
    assert params.get("iss") == issuer, "RFC 9207 iss"
    token = rp.fetch_access_token(
        redirect_uri, code=params["code"], code_verifier=request["code_verifier"]
    )
    assert "id_token" in token, token

    # Authlib's CodeIDToken claims validation: the signature against jwks_uri,
    # iss and aud (given here), exp/iat, nonce and at_hash (from the token).
    expect = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": client_id},
    }
    claims = rp.parse_id_token(token, nonce=request["nonce"], claims_options=dict(expect))
    assert claims["nonce"] == request["nonce"]
    assert "at_hash" in claims, "at_hash is checked only when present"

    userinfo = rp.userinfo(token=token)
    assert userinfo["sub"] == claims["sub"], (userinfo["sub"], claims["sub"])

    with rp._get_oauth_client(**metadata) as session:
        refreshed = session.refresh_token(
            metadata["token_endpoint"], refresh_token=token["refresh_token"]
        )
    assert "id_token" in refreshed, refreshed
    assert refreshed["id_token"] != token["id_token"]
    # No nonce in a refreshed ID token (OIDC Core §12.2): none is expected.
    again = rp.parse_id_token(refreshed, nonce=None, claims_options=dict(expect))
    assert again["sub"] == claims["sub"], "OIDC Core §12.2: the same sub"
    assert again["auth_time"] == claims["auth_time"], "OIDC Core §12.2: the same auth_time"

    # A forged nonce must fail Authlib's validation (the check is live).
    try:
        rp.parse_id_token(token, nonce=request["nonce"] + "x", claims_options=dict(expect))
    except Exception as e:  # joserfc's InvalidClaimError
        forged = type(e).__name__
    else:
        raise AssertionError("a wrong nonce was accepted")

    send(
        {
            "ok": True,
            "claims": dict(claims),
            "refreshed_claims": dict(again),
            "userinfo": dict(userinfo),
            "id_token": token["id_token"],
            "forged_nonce": forged,
        }
    )


if __name__ == "__main__":
    main()
