"""Profile: log in with LDAP (KQI_HUB_CONFIG=hub_config/profiles/ldap.py).

Needs `pip install jupyterhub-ldapauthenticator` in the platform's venv. Users
who log in for the first time are provisioned by the kqi service into the
tenant named by `c.KqiService.new_user_tenant` (default `default`) as `user`.
Edit the server values below (or set them in another profile).
"""

import os

c = get_config()  # noqa: F821
c.JupyterHub.authenticator_class = "ldapauthenticator.LDAPAuthenticator"
c.LDAPAuthenticator.server_address = os.environ.get("KQI_LDAP_SERVER", "ldap.example.org")
c.LDAPAuthenticator.bind_dn_template = [os.environ.get("KQI_LDAP_BIND_DN", "uid={username},ou=people,dc=example,dc=org")]
c.LDAPAuthenticator.use_ssl = os.environ.get("KQI_LDAP_SSL", "1") == "1"
c.Authenticator.allow_all = True
