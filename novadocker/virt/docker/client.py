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


def connect(conf):
    """A docker SDK client for the engine named by the [docker] options.

    Unit tests replace this with an in-memory engine.
    """
    return docker.DockerClient(base_url=conf.api_url,
                               version=conf.api_version,
                               timeout=conf.api_timeout)


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
        raise exception.DockerUnreachable(url=conf.api_url,
                                          reason=str(e)) from e
    try:
        yield client
    except (docker_errors.DockerException,
            requests.exceptions.RequestException) as e:
        raise _translate(e, what) from e
    finally:
        client.close()
