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

"""The few Heat API calls the ODL scenario makes.

Tempest itself no longer ships an orchestration client; this one is built
on tempest.lib's RestClient, a stable interface.
"""

import time

from oslo_serialization import jsonutils as json
from tempest.lib.common import rest_client
from tempest.lib import exceptions as lib_exc


class StackFailed(lib_exc.TempestException):
    message = 'Stack %(name)s is %(status)s: %(reason)s'


class OrchestrationClient(rest_client.RestClient):

    @classmethod
    def for_credentials(cls, credentials, conf):
        """A client for *credentials* (a tempest client manager)."""
        return cls(
            credentials.auth_provider, 'orchestration', conf.identity.region,
            build_interval=conf.compute.build_interval,
            build_timeout=conf.nova_docker.stack_timeout,
            disable_ssl_certificate_validation=(
                conf.identity.disable_ssl_certificate_validation),
            ca_certs=conf.identity.ca_certificates_file)

    def create_stack(self, name, template, parameters, timeout_mins):
        body = json.dumps({'stack_name': name, 'template': template,
                           'parameters': parameters,
                           'timeout_mins': timeout_mins})
        resp, body = self.post('stacks', body)
        self.expected_success(201, resp.status)
        return rest_client.ResponseBody(resp, json.loads(body))

    def show_stack(self, name, stack_id):
        resp, body = self.get('stacks/%s/%s' % (name, stack_id))
        self.expected_success(200, resp.status)
        return rest_client.ResponseBody(resp, json.loads(body))

    def list_resources(self, name, stack_id, nested_depth=3):
        resp, body = self.get('stacks/%s/%s/resources?nested_depth=%d'
                              % (name, stack_id, nested_depth))
        self.expected_success(200, resp.status)
        return rest_client.ResponseBody(resp, json.loads(body))

    def delete_stack(self, name, stack_id):
        resp, body = self.delete('stacks/%s/%s' % (name, stack_id))
        self.expected_success(204, resp.status)
        return rest_client.ResponseBody(resp, body)

    def wait_for_stack(self, name, stack_id, status, timeout):
        """Poll until the stack has *status*; StackFailed on a *_FAILED."""
        deadline = time.time() + timeout
        while True:
            try:
                stack = self.show_stack(name, stack_id)['stack']
            except lib_exc.NotFound:
                if status == 'DELETE_COMPLETE':
                    return None
                raise
            current = stack['stack_status']
            if current == status:
                return stack
            if current.endswith('_FAILED'):
                raise StackFailed(name=name, status=current,
                                  reason=stack.get('stack_status_reason'))
            if time.time() > deadline:
                raise lib_exc.TimeoutException(
                    'Stack %s is still %s after %d s (waiting for %s)'
                    % (name, current, timeout, status))
            time.sleep(self.build_interval)
