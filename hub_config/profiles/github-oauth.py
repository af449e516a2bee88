"""Profile: log in with GitHub OAuth (KQI_HUB_CONFIG=hub_config/profiles/github-oauth.py).

Needs `pip install oauthenticator` in the platform's venv and an OAuth app whose
callback is `{public URL}/hub/oauth_callback`. First-time users are provisioned
by the kqi service as with LDAP. Token logins of the upstream CLI
(`kqi account login`) need a password authenticator; OAuth users create a
token on the hub's /hub/token page and use it as KQI_TOKEN.
"""

import os

c = get_config()  # noqa: F821
c.JupyterHub.authenticator_class = "github"
c.GitHubOAuthenticator.client_id = os.environ["KQI_GITHUB_CLIENT_ID"]
c.GitHubOAuthenticator.client_secret = os.environ["KQI_GITHUB_CLIENT_SECRET"]
c.GitHubOAuthenticator.oauth_callback_url = os.environ["KQI_PUBLIC_URL"].rstrip("/") + "/hub/oauth_callback"
c.GitHubOAuthenticator.allowed_organizations = set(filter(None, os.environ.get("KQI_GITHUB_ORGS", "").split(",")))
c.Authenticator.allow_all = not c.GitHubOAuthenticator.allowed_organizations
