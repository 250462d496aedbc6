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

"""Nova in one process on this host's real engine, OVS and rootwrap.

What the functional tests (tests/functional/) and the in-process
benchmark (tools/benchmark/inprocess.py) both stand on: ``base`` runs
Nova's services with the driver, ``fixtures`` holds the Glance and
Neutron stand-ins that feed the real daemons. A library, not a test: no
tool imports the tests.
"""

import os

# nova-compute runs on native threads by default since Nova 34 (its command
# patches with backend='threading'); so does Nova here. Nova's own test
# package patches with eventlet unless told not to, when it is imported:
# set before anything imports nova.
os.environ.setdefault('OS_NOVA_DISABLE_EVENTLET_PATCHING', '1')

from nova import monkey_patch  # noqa: E402

monkey_patch.patch(backend='threading')
