"""The kqi service: a hub-managed tornado application serving the KAMONOHASHI v2 API.

JupyterHub starts it (``c.JupyterHub.services``) with ``JUPYTERHUB_API_TOKEN``,
``JUPYTERHUB_API_URL`` and ``JUPYTERHUB_SERVICE_PREFIX`` in its environment;
the proxy routes ``/services/kqi/`` to it. API clients authenticate with
``Authorization: Bearer <token>`` (hub tokens), browsers with the service's
HubOAuth cookie.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler
from jupyterhub.utils import url_path_join
from tornado import ioloop, web
from tornado.httpserver import HTTPServer
from traitlets import Bool, Enum, Integer, Type, Unicode, default
from traitlets.config import Application

from kqi_services.accounts.secretbox import SecretBox, read_or_create_secret
from kqi_services.hub.api import HubAPI
from kqi_services.hub.lifeline import tie_to_hub
from kqi_services.hub.mirror import reconcile
from kqi_services.hub.settings import PlatformSettings
from kqi_services.jobs.tensorboard import TensorBoardManager

from .db import check_db_revision, make_engine, make_session_factory
from .executor.hostmount import mount_nosuid
from .jobs.engine import JobEngine
from .jobs.imagetools import ImageTools
from .jobs.interactive import software_paths
from .storage import StoreRegistry, local_store_for
from .wheelhouse import default_root as default_wheelhouse_root

log = logging.getLogger("kqi")


SIGNATURE_IN_QUERY = re.compile(r"(signature|X-Amz-Signature|token)=[^&]*", re.IGNORECASE)


def log_request(handler) -> None:
    """tornado's access log line, with URL signatures and tokens in queries redacted."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    uri = SIGNATURE_IN_QUERY.sub(lambda m: m.group(1) + "=[secret]", handler.request.uri)
    elapsed = 1000.0 * handler.request.request_time()
    logging.getLogger("tornado.access").log(
        level, "%d %s %s (%s) %.2fms", status, handler.request.method, uri, handler.request.remote_ip, elapsed
    )


#: executors by the names KQI_EXECUTOR takes
EXECUTORS = {"local": "kqi_services.executor.local.LocalExecutor",
             "docker": "kqi_services.executor.docker.DockerExecutor"}


class KqiService(Application):
    name = "kqi-service"
    description = "The kqi service of KQI Hub (started by JupyterHub)"

    service_prefix = Unicode(help="URL prefix the proxy routes to this service.").tag(config=True)

    @default("service_prefix")
    def _prefix_default(self):
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/kqi/")

    service_url = Unicode(help="Where this service listens (from the hub's service entry).").tag(config=True)

    @default("service_url")
    def _url_default(self):
        return os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:8003")

    hub_api_url = Unicode(help="The hub's REST API.").tag(config=True)

    @default("hub_api_url")
    def _hub_api_default(self):
        return os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8001/hub/api")

    api_token = Unicode(help="This service's token for the hub API.").tag(config=True)

    @default("api_token")
    def _token_default(self):
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    new_user_tenant = Unicode(
        "default",
        help="""Tenant that users who first log in through LDAP or OAuth join (as `user`).
        Empty: they join none until an admin adds them.""",
    ).tag(config=True)

    public_url = Unicode(
        "",
        help="""The platform's public URL (e.g. https://kqi.example.org) used in the absolute,
        self-signed upload and download URLs. Empty: taken from each request's Host and
        X-Forwarded-* headers, so clients get URLs they can reach.""",
    ).tag(config=True)

    @default("public_url")
    def _public_url_default(self):
        return os.environ.get("KQI_PUBLIC_URL", "")

    run_network = Enum(
        ["private", "outside", "host"], "private",
        help="""The network of runs and notebooks. `private` (default): a network namespace of each
        run's own that reaches only the kqi service and, for notebooks, the hub (relayed ports;
        never another run's ports or the host's other loopback listeners). `outside`: that plus
        the outside network through slirp4netns (apt-get install slirp4netns), still never the
        host's loopback. `host`: the host's network, shared by every run (no isolation between
        tenants; for hosts where namespaces cannot be made). Both need root. KQI_RUN_NETWORK.""",
    ).tag(config=True)

    @default("run_network")
    def _run_network_default(self):
        return os.environ.get("KQI_RUN_NETWORK", "private")

    executor_class = Type(
        "kqi_services.executor.local.LocalExecutor",
        klass="kqi_services.executor.base.Executor",
        help="""The executor that runs every job and notebook (``executor.base.Executor``). It is built as
        ``executor_class(runs_root, extra_ro_paths=...)``: ``runs_root`` is its state directory under
        the platform's, ``extra_ro_paths`` what a notebook's server needs read-only (this Python
        environment). The default runs each in a bubblewrap sandbox on this host. KQI_EXECUTOR names
        one (``local``; ``docker``: each run in its image over the Docker Engine API at DOCKER_HOST,
        Docker or Podman) or gives a class's import path. Example:
        ``--KqiService.executor_class=mypackage.executors.MyExecutor``.""",
    ).tag(config=True)

    @default("executor_class")
    def _executor_class_default(self):
        return EXECUTORS.get(os.environ.get("KQI_EXECUTOR") or "local", os.environ.get("KQI_EXECUTOR"))

    default_image = Unicode(
        help="""The image of runs and notebooks that name none, for executors that run images (``KQI_EXECUTOR=docker``):
        a full reference with its registry host, pulled without a login. Empty: such a run ends as Error
        saying it needs an image. A notebook's image needs python3 and pip (JupyterLab is installed when
        missing). KQI_DEFAULT_IMAGE. Example: ``--KqiService.default_image=registry.local:5000/base/python:3.11``.""",
    ).tag(config=True)

    @default("default_image")
    def _default_image_default(self):
        return os.environ.get("KQI_DEFAULT_IMAGE", "")

    install_tools_in_images = Bool(
        True,
        help="""Install the kqi CLI (and, for notebooks, JupyterLab and the hub's single-user server) at the start
        of a run in an image that lacks them, from this platform's wheels (``wheelhouse_dir``), without the
        internet. False runs images as they are. Example: ``--KqiService.install_tools_in_images=False``.""",
    ).tag(config=True)

    wheelhouse_dir = Unicode(
        help="""The directory of wheels served as a PEP 503 index at ``wheels/simple/`` (built by ``make setup``:
        ``python -m kqi_services.wheelhouse build``), where runs in images install the platform's tools from.
        Example: ``--KqiService.wheelhouse_dir=/opt/kqi/wheels``.""",
    ).tag(config=True)

    @default("wheelhouse_dir")
    def _wheelhouse_dir_default(self):
        return default_wheelhouse_root()

    trust_forwarded_host = Bool(
        False,
        help="""Believe the X-Forwarded-Host header of every request: set it when a proxy in front of
        the hub (nginx, a Kubernetes ingress) overwrites that header with the host browsers use.
        The hub's own configurable-http-proxy passes on whatever the client sent (it adds the header
        only when absent), so by default the same-origin check of cookie-authenticated writes and the
        URLs handed to browsers use the Host header, which that proxy keeps as the client sent it.
        Example: ``--KqiService.trust_forwarded_host=True`` on the service's command line.""",
    ).tag(config=True)

    max_body_bytes = Integer(
        64 * 1024 * 1024,
        help="""The largest request body (bytes) the service reads whole: JSON API calls. A larger one
        is answered 413 with a JSON message. Upload parts are streamed to disk and are not limited
        by this (they may be up to 5 GiB each). Example: ``--KqiService.max_body_bytes=16777216``.""",
    ).tag(config=True)

    upload_ttl_seconds = Integer(
        24 * 3600, help="Parts of uploads not completed within this time are removed."
    ).tag(config=True)

    token_cache_seconds = Integer(
        60, help="How long a token's identity answered by the hub is reused before asking again."
    ).tag(config=True)

    def initialize(self, argv=None):
        super().initialize(argv)
        logging.basicConfig(level=logging.INFO, format="[%(levelname)1.1s %(asctime)s %(name)s] %(message)s")
        self.platform = PlatformSettings()
        self.db_engine = make_engine(self.platform.db_url)
        check_db_revision(self.db_engine)
        self.session_factory = make_session_factory(self.db_engine)
        self.secret_box = SecretBox.from_key_file(self.platform.encryption_key_file)
        self.hub_api = HubAPI(self.hub_api_url, self.api_token)
        self.local_store = local_store_for(self.platform)
        self.stores = StoreRegistry(self.local_store, self.secret_box)
        self.runs_dir = os.path.join(self.platform.state_dir, "runs")
        # nothing a run leaves there is setuid on the host; the whole state dir, so that the store's objects
        # and the runs' directories are one mount, and staging and results hard-link instead of copying
        not_nosuid = mount_nosuid(self.platform.state_dir)
        if not_nosuid:
            log.warning("%s; a run could leave setuid binaries there", not_nosuid)
        # notebooks run the hub's single-user server from this Python environment
        self.executor = self.executor_class(os.path.join(self.platform.state_dir, "executor"),
                                            extra_ro_paths=software_paths())
        # instance(): the OAuth callback and landing handlers share this one
        self.hub_auth = HubOAuth.instance(
            api_url=self.hub_api_url, api_token=self.api_token, cache_max_age=self.token_cache_seconds
        )
        self.jobs = JobEngine(self.session_factory, self.executor, self.stores, self.hub_api, self.secret_box,
                              self.runs_dir, self.run_server_url(), hub_auth=self.hub_auth,
                              run_network=self.run_network, default_image=self.default_image,
                              image_tools=ImageTools.for_server(self.run_server_url(), self.install_tools_in_images))
        # TensorBoards die with this process (see kqi_services/jobs/tensorboard.py); no shutdown hook needed
        self.tensorboards = TensorBoardManager(os.path.join(self.platform.state_dir, "tensorboard"),
                                               url_path_join(self.service_prefix, "tensorboard/"), parent=self)
        self.web_app = self.make_web_app()

    def make_web_app(self) -> web.Application:
        from handlers import default_handlers
        from handlers.base import JSONNotFoundHandler
        from handlers.body_limit import BodyLimitedApplication

        prefix = self.service_prefix
        routes = [(url_path_join(prefix, pattern), *rest) for pattern, *rest in default_handlers]
        routes.append((url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler))
        routes.append((url_path_join(prefix, r"api/.*"), JSONNotFoundHandler))
        cookie_secret = read_or_create_secret(os.path.join(self.platform.secrets_dir, "kqi-service-cookie-secret"))
        # the OAuth state and token cookies (HubOAuth) and the _xsrf cookie: never sent along by
        # another site's subrequests or form posts; an operator's JUPYTERHUB_COOKIE_OPTIONS may override
        self.hub_auth.cookie_options = {"samesite": "Lax", **self.hub_auth.cookie_options}
        return BodyLimitedApplication(
            routes,
            cookie_secret=cookie_secret,
            xsrf_cookie_kwargs={"samesite": "Lax"},
            max_body_bytes=self.max_body_bytes,
            hub_auth=self.hub_auth,
            hub_api=self.hub_api,
            session_factory=self.session_factory,
            secret_box=self.secret_box,
            local_store=self.local_store,
            stores=self.stores,
            engine=self.jobs,
            executor=self.executor,
            runs_dir=self.runs_dir,
            tensorboards=self.tensorboards,
            kqi=self,
            platform=self.platform,
            default_handler_class=JSONNotFoundHandler,
            log_function=log_request,
        )

    def schedule_reconcile(self) -> None:
        """Repair the hub's users and groups from the database, soon, with retries."""
        ioloop.IOLoop.current().add_callback(self.mirror_to_hub)

    @property
    def hub_base_url(self) -> str:
        """The hub's base URL path (``/`` unless the hub is configured under a prefix)."""
        return os.environ.get("JUPYTERHUB_BASE_URL", "/").rstrip("/") + "/"

    def run_server_url(self) -> str:
        """KQI_SERVER of runs: the service as a run reaches it.

        From a network of its own a run reaches the proxy on this host's
        loopback (relayed into its namespace); on the host's network, the
        public URL when one is configured.
        """
        base = self.platform.public_url if self.run_network != "host" else (
            self.public_url or self.platform.public_url)
        return base.rstrip("/") + self.service_prefix.rstrip("/")

    async def mirror_to_hub(self, attempts: int = 30) -> None:
        """Push the kqi accounts to the hub; retried while the hub is still starting."""
        for attempt in range(attempts):
            try:
                with self.session_factory() as db:
                    await reconcile(self.hub_api, db)
                log.info("Hub users and tenant groups are in step with the kqi database")
                return
            except Exception as e:  # noqa: BLE001 - retried, then logged
                if attempt == attempts - 1:
                    log.error("Could not mirror accounts to the hub: %s", e)
                    return
                await asyncio.sleep(1)

    async def purge_abandoned_uploads(self) -> None:
        """Remove the parts of uploads nobody completed within upload_ttl_seconds."""
        removed = await asyncio.get_running_loop().run_in_executor(
            None, self.local_store.purge_abandoned, self.upload_ttl_seconds
        )
        if removed:
            log.info("Removed %d abandoned uploads", removed)

    def start(self):
        from urllib.parse import urlparse

        tie_to_hub(self.platform.state_dir)  # end with the hub, even a kill -9ed one
        url = urlparse(self.service_url)
        from handlers.storage import MAX_PART_BYTES

        # bodies over max_body_bytes are read and dropped, then answered 413 (handlers/body_limit.py);
        # tornado would close the connection without an answer above the connection's own limit
        server = HTTPServer(self.web_app, xheaders=True, max_buffer_size=64 * 1024 * 1024, chunk_size=512 * 1024,
                            max_body_size=MAX_PART_BYTES)
        server.listen(url.port, url.hostname)
        log.info("kqi service listening on %s (prefix %s)", self.service_url, self.service_prefix)
        # Start-up's objects live as long as the process: kept out of the cyclic collector's passes, which
        # walked them all every few seconds under load (90-140 ms with the event loop stopped); collections
        # of young objects every 10,000 allocations, not 700 (50 clients: 1.5 s of collecting a minute -> 0.05 s)
        gc.collect()
        gc.freeze()
        gc.set_threshold(10_000, 10, 10)
        loop = ioloop.IOLoop.current()
        loop.add_callback(self.mirror_to_hub)
        loop.add_callback(self.jobs.start)
        loop.add_callback(self.tensorboards.watch)
        ioloop.PeriodicCallback(self.purge_abandoned_uploads, 3600 * 1000).start()
        loop.add_callback(self.purge_abandoned_uploads)
        try:
            loop.start()
        except KeyboardInterrupt:
            pass


main = KqiService.launch_instance
