# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""The one place that talks to the Docker engine.

``docker_client()`` yields a docker SDK client and translates every docker
error, once and by type, into an exception of this module that keeps the
original as its cause. Callers never see ``docker.errors``.
"""

import contextlib
import threading

import docker
from docker import errors as docker_errors
from oslo_log import log as logging
import requests

import novadocker.conf
from novadocker.virt.docker import exception

CONF = novadocker.conf.CONF
LOG = logging.getLogger(__name__)


def _translate(err, what):
    """Map a docker SDK or transport error to a nova-docker exception."""
    if isinstance(err, docker_errors.NotFound):
        return exception.DockerObjectNotFound(what=what, reason=_explain(err))
    if isinstance(err, docker_errors.APIError):
        if err.status_code == 409:
            return exception.DockerConflict(what=what, reason=_explain(err))
        return exception.DockerError(what=what, reason=_explain(err))
    if isinstance(err, requests.exceptions.ConnectionError):
        return exception.DockerUnreachable(url=CONF.docker.api_url,
                                           reason=str(err))
    return exception.DockerError(what=what, reason=_explain(err))


def _explain(err):
    explanation = getattr(err, 'explanation', None)
    if isinstance(explanation, bytes):
        explanation = explanation.decode('utf-8', 'replace')
    return explanation or str(err)


# api_url -> the API version negotiated with that engine (once a process).
_negotiated = {}
_negotiate_lock = threading.Lock()


def _version_for(conf):
    """The API version to ask for: configured, or negotiated once.

    With "auto" the SDK asks the engine (GET /version) every time a client
    is made; the answer is kept instead, per engine URL, until the engine
    becomes unreachable (it may come back as another version).
    """
    if conf.api_version != 'auto':
        return conf.api_version
    return _negotiated.get(conf.api_url)


def _open(conf, version):
    return docker.DockerClient(base_url=conf.api_url, version=version,
                               timeout=conf.api_timeout)


def connect(conf):
    """A docker SDK client for the engine named by the [docker] options.

    Unit tests replace this with an in-memory engine.
    """
    version = _version_for(conf)
    if version:
        return _open(conf, version)
    with _negotiate_lock:
        version = _version_for(conf)
        if version:
            return _open(conf, version)
        client = _open(conf, 'auto')
        _negotiated[conf.api_url] = client.api.api_version
        LOG.debug('Docker engine API version %(v)s negotiated with %(url)s',
                  {'v': client.api.api_version, 'url': conf.api_url})
        return client


def forget_version(conf):
    """Negotiate again at the next connection (the engine went away)."""
    _negotiated.pop(conf.api_url, None)


@contextlib.contextmanager
def docker_client(what='Docker engine request'):
    """Yield a docker SDK client; translate docker errors on the way out.

    *what* names the operation in error messages, e.g. "start container
    nova-<uuid>".
    """
    conf = CONF.docker
    try:
        client = connect(conf)
    except (docker_errors.DockerException,
            requests.exceptions.RequestException, OSError) as e:
        forget_version(conf)
        raise exception.DockerUnreachable(url=conf.api_url,
                                          reason=str(e)) from e
    try:
        yield client
    except (docker_errors.DockerException,
            requests.exceptions.RequestException) as e:
        translated = _translate(e, what)
        if isinstance(translated, exception.DockerUnreachable):
            forget_version(conf)
        raise translated from e
    finally:
        client.close()
