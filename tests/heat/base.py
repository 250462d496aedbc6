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

"""HeatTestCase for OS::ODL::Cluster: fake cloud, local engine, fake ODL."""

import time

from heat.common import template_format
from heat.engine import resource
from heat.engine import scheduler
from heat.tests import common
from heat.tests import utils
from oslo_config import cfg

from heat_plugins import odl_cluster
from tests.heat import fake_odl
from tests.heat import fake_openstack
from tests.heat import in_process_engine

MEMBER_IPS = ['10.0.0.11', '10.0.0.12', '10.0.0.13']

CLUSTER_TEMPLATE = '''
heat_template_version: 2016-10-14
parameters:
  size: {type: number, default: 3}
  fixed_ips: {type: comma_delimited_list, default: ''}
  image: {type: string, default: odl-image}
  username: {type: string, default: admin}
  password: {type: string, default: admin, hidden: true}
  timeout: {type: number, default: 3}
  readiness: {type: string, default: poll}
  policy: {type: string, default: anti-affinity}
  vip: {type: boolean, default: false}
  vip_address: {type: string, default: 10.0.0.10}
  vip_image: {type: string, default: nova-docker-haproxy}
  network: {type: string, default: odl-net}
resources:
  cluster:
    type: OS::ODL::Cluster
    properties:
      image: {get_param: image}
      flavor: m1.odl
      network: {get_param: network}
      size: {get_param: size}
      fixed_ips: {get_param: fixed_ips}
      username: {get_param: username}
      password: {get_param: password}
      readiness_timeout: {get_param: timeout}
      readiness: {get_param: readiness}
      server_group_policy: {get_param: policy}
      features: [odl-netvirt-openstack]
      northbound_vip: {get_param: vip}
      vip_address: {get_param: vip_address}
      vip_image: {get_param: vip_image}
outputs:
  members: {value: {get_attr: [cluster, members]}}
  member_ips: {value: {get_attr: [cluster, member_ips]}}
  ovs_managers: {value: {get_attr: [cluster, ovs_managers]}}
  odl_ovs_managers: {value: {get_attr: [cluster, odl_ovs_managers]}}
  controllers: {value: {get_attr: [cluster, controllers]}}
  restconf_urls: {value: {get_attr: [cluster, restconf_urls]}}
  leader: {value: {get_attr: [cluster, leader]}}
  northbound_vip: {value: {get_attr: [cluster, northbound_vip]}}
  northbound_vip_floating_ip:
    value: {get_attr: [cluster, northbound_vip_floating_ip]}
  northbound_url: {value: {get_attr: [cluster, northbound_url]}}
  devstack_local_conf: {value: {get_attr: [cluster, devstack_local_conf]}}
  server_group_policy: {value: {get_attr: [cluster, server_group_policy]}}
  member_hosts: {value: {get_attr: [cluster, member_hosts]}}
'''


class OdlClusterTestCase(common.HeatTestCase):
    """Heat's test harness with Nova/Neutron/Glance fakes and a fake ODL."""

    #: Seconds the scheduler really sleeps between steps in these tests
    #: (HeatTestCase disables sleeping; readiness waits must not spin).
    STEP_SECONDS = 0.02

    def setUp(self):
        super(OdlClusterTestCase, self).setUp()
        # Legacy (non-convergence) engine: stacks run in this thread.
        cfg.CONF.set_override('convergence_engine', False)
        # Polling mode (these tests' default) only where the operator
        # allows it; the signal mode tests set readiness=signal.
        cfg.CONF.set_override('readiness_poll_networks',
                              [fake_openstack.NETWORK_NAME],
                              group='odl_cluster')
        resource._register_class('OS::ODL::Cluster', odl_cluster.OdlCluster)
        self.cloud = fake_openstack.FakeCloud()
        self.cloud.install(self)
        self.engine = in_process_engine.install(self)
        self.odl = fake_odl.FakeOdlCluster(MEMBER_IPS)
        # The probes' connections to the members' (10.0.0.x) addresses
        # reach this server, which answers for them.
        fake_odl.serve(self, self.odl)
        self.patchobject(scheduler.TaskRunner, '_sleep',
                         side_effect=lambda wait: time.sleep(
                             self.STEP_SECONDS if wait else 0))

    def make_stack(self, name='odl', **params):
        params.setdefault('fixed_ips', ','.join(MEMBER_IPS))
        tmpl = template_format.parse(CLUSTER_TEMPLATE)
        stack = utils.parse_stack(tmpl, params=params, stack_name=name)
        return stack

    def create_stack(self, **params):
        stack = self.make_stack(**params)
        stack.store()
        stack.create()
        return stack

    def outputs(self, stack):
        """The outputs of ``stack`` as the engine's show_stack gives them."""
        shown = self.engine.engine.show_stack(
            stack.context, dict(stack.identifier()))[0]
        for out in shown['outputs']:
            self.assertNotIn('output_error', out, out)
        return {out['output_key']: out['output_value']
                for out in shown['outputs']}
