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

"""The ``[docker]`` option group."""

from oslo_config import cfg

docker_group = cfg.OptGroup(
    'docker',
    title='Docker compute driver options',
    help='Options for the nova-docker compute driver '
         '(compute_driver = docker.DockerDriver).')

docker_opts = [
    cfg.StrOpt(
        'api_url',
        default='unix:///var/run/docker.sock',
        help='URL of the Docker engine API. The nova-compute user must be '
             'able to open the socket: add it to the "docker" group. Never '
             'make the socket world-writable.'),
    cfg.StrOpt(
        'api_version',
        default='auto',
        help='Docker engine API version to speak, e.g. "1.41", or "auto" '
             'to negotiate the highest version both sides support.'),
    cfg.IntOpt(
        'api_timeout',
        default=120,
        min=5,
        help='Seconds to wait for one Docker engine API call before giving '
             'up. Image loads and commits are streamed and may take longer '
             'in total; this bounds a single request.'),
    cfg.StrOpt(
        'cpu_limit_mode',
        default='quota',
        choices=[
            ('quota', 'Hard cap: the container may use at most the '
                      "flavor's vCPU count of CPU time (NanoCpus)."),
            ('shares', 'Relative weight: 1024 CPU shares per vCPU; a '
                       'container may use idle CPU beyond its vCPUs.'),
        ],
        help='How the flavor vCPU count limits a container.'),
    cfg.IntOpt(
        'pids_limit',
        default=4096,
        min=16,
        help='Maximum number of processes (PIDs) in one container; stops a '
             'fork bomb in one server from exhausting the host. A flavor '
             'extra spec "docker:pids_limit" overrides it per flavor.'),
    cfg.StrOpt(
        'sandbox_image',
        default='nova-docker/sandbox:1',
        help='Name of the local image of the sandbox container that owns '
             "each server's network namespace. The driver builds it at "
             'start-up from sandbox_binary if it is missing; it is never '
             'pulled from a registry.'),
    cfg.StrOpt(
        'sandbox_binary',
        default='/bin/busybox',
        help='A statically linked busybox on the compute host (Debian '
             'package busybox-static), copied into the sandbox image. The '
             'sandbox only sleeps; it exists so that networking is wired '
             'before the workload starts.'),
    cfg.StrOpt(
        'root_helper',
        default='',
        help='Command prefix used to run the namespace-link commands as '
             'root through rootwrap. Empty means Nova\'s own '
             '"sudo nova-rootwrap <[DEFAULT] rootwrap_config>". The '
             'filters are etc/nova/rootwrap.d/docker.filters.'),
    cfg.IntOpt(
        'console_log_max_bytes',
        default=100 * 1024,
        min=1024,
        help='get_console_output returns at most this many bytes: the end '
             "of the container's output."),
    cfg.IntOpt(
        'reboot_timeout',
        default=30,
        min=0,
        help='Seconds a soft reboot waits for the workload to stop after '
             'SIGTERM before it is killed.'),
    # -- images
    cfg.IntOpt(
        'image_max_bytes',
        default=16 * 1024 ** 3,
        min=1024 ** 2,
        help='Largest Glance image (a "docker save" archive) the driver '
             'loads, in bytes, counted both as downloaded and once '
             'decompressed. A bigger image is refused before the engine '
             'has loaded anything.'),
    cfg.IntOpt(
        'image_max_expansion',
        default=20,
        min=1,
        max=1000,
        help='A gzip-compressed image may inflate to at most this many '
             'times the size Glance records for it (and never beyond '
             'image_max_bytes). Stops compression bombs: a small upload '
             'that inflates to terabytes.'),
    cfg.IntOpt(
        'image_max_members',
        default=10000,
        min=16,
        max=10000000,
        help='Most tar headers (members, GNU long-name and PAX headers '
             'included) one image archive may hold. "docker save" writes '
             'about four per layer.'),
    cfg.IntOpt(
        'image_max_header_bytes',
        default=64 * 1024,
        min=1024,
        max=16 * 1024 ** 2,
        help='Largest single GNU long-name, long-link or PAX extended '
             'header in an image archive, in bytes. Such a header is read '
             'whole, so this bounds the memory one header can take.'),
    cfg.StrOpt(
        'image_lock_path',
        help='Directory of the file locks that serialise image loads and '
             'the sandbox image build across every nova-compute service '
             'sharing this Docker engine; they must all use the same '
             'directory. Unset means [oslo_concurrency] lock_path.'),
    # -- containers and driver
    cfg.IntOpt(
        'engine_start_timeout',
        default=60,
        min=0,
        help='Seconds nova-compute waits at start-up for the Docker engine '
             'to answer, retrying every few seconds with a log line, '
             'before it gives up and the service stops. 0: try once.'),
    cfg.IntOpt(
        'engine_watch_interval',
        default=10,
        min=0,
        help='Seconds between two checks for servers whose sandbox the '
             'engine stopped behind Nova\'s back (a dockerd restart without '
             'live-restore stops every container): such a server that Nova '
             'still records as running is started again, sandbox first, '
             'wired, then its workload. 0 disables the check.'),
    cfg.ListOpt(
        'cap_keep',
        default=[],
        help='Capabilities to keep out of those the driver drops from every '
             'workload (NET_RAW, MKNOD, AUDIT_WRITE, SETFCAP, SYS_CHROOT, '
             'SETPCAP), e.g. "NET_RAW" for images that need raw sockets '
             '(ping). Capabilities are never added beyond Docker\'s '
             'defaults, whatever the image says.'),
    cfg.IntOpt(
        'nofile_limit',
        default=16384,
        min=64,
        help='Open files ulimit (soft and hard) of every workload. It '
             'cannot exceed dockerd\'s own hard limit (the start fails '
             'with "error setting rlimits"): raise that first (e.g. '
             '"ulimit -n" in the script that starts dockerd).'),
    cfg.IntOpt(
        'nproc_limit',
        default=4096,
        min=16,
        help='Processes ulimit (RLIMIT_NPROC, soft and hard) of every '
             'workload. The kernel counts it per user id across the host '
             'and does not apply it to root: pids_limit is the per-server '
             'bound; this one also bounds a non-root user id.'),
    cfg.StrOpt(
        'log_max_size',
        default='10m',
        regex=r'^[1-9][0-9]*[kmg]$',
        help='Size at which the engine rotates a container\'s json-file '
             'log, e.g. "10m". With log_max_file this bounds the disk a '
             'chatty server uses for its console.'),
    cfg.IntOpt(
        'log_max_file',
        default=3,
        min=1,
        help='Number of rotated json-file log files kept per container.'),
    cfg.StrOpt(
        'runtime',
        default='',
        help='OCI runtime of every workload, e.g. "runsc" (gVisor) or '
             '"kata", as registered in the engine\'s daemon.json '
             '"runtimes". Empty: the engine\'s default (runc). nova-compute '
             'refuses to start if the engine does not know it.'),
    cfg.StrOpt(
        'root_disk_quota',
        default='auto',
        choices=[
            ('auto', 'Cap the writable layer at the flavor\'s root disk '
                     'where the storage driver supports it (overlay2 on '
                     'xfs with pquota, devicemapper, btrfs, zfs); detected '
                     'at start-up, logged when it cannot be.'),
            ('off', 'Never cap the writable layer.'),
        ],
        help='Whether the flavor\'s root disk (root_gb) limits the '
             'container\'s writable layer.'),
    # -- performance
    cfg.IntOpt(
        'listing_max_age',
        default=10,
        min=0,
        help='Seconds one listing of this host\'s containers (a single '
             'engine request) may serve the periodic readers: the power '
             'state sync (get_info of every server, get_num_instances), '
             'list_instances and the engine watch. Any change the driver '
             'makes drops it at once, so only a change made behind Nova\'s '
             'back (a container that exited or was removed by hand) is seen '
             'up to this late. Nova\'s own checks that must be exact ask the '
             'engine directly. 0: every caller asks the engine.'),
    # -- guest set-up and console
    cfg.StrOpt(
        'config_drive_dir',
        default='$state_path/docker-config-drives',
        help='Host directory holding one subdirectory per server with a '
             'config drive: the metadata tree Nova\'s own config-drive code '
             'builds (openstack/latest/meta_data.json with the key pairs, '
             'user_data, network_data.json, vendor_data2.json, ec2/). Each '
             'is bind-mounted read-only into its own server only, and '
             'removed with the server. Keep it on a local filesystem '
             'owned by the nova-compute user; no tenant can write it.'),
    cfg.StrOpt(
        'config_drive_mount',
        default='/config-drive',
        regex=r'^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$',
        help='Absolute path inside the server where its config drive is '
             'mounted read-only. The default, /config-drive, is one of the '
             'two directories cloud-init\'s ConfigDrive datasource reads '
             'when there is no disk labelled config-2 (the other is '
             '/var/lib/cloud/seed/config_drive), so images with cloud-init '
             'find their metadata there.'),
    cfg.StrOpt(
        'user_data_scripts',
        default='run',
        choices=[
            ('run', 'User data starting with "#!" is run once, as the '
                    'first thing the workload does, before the image\'s own '
                    'command (which then replaces it as PID 1); its output '
                    'goes to the console log. The server gets a config '
                    'drive to carry it. Needs /bin/sh in the image.'),
            ('expose', 'User data is only made available (config drive, '
                       'metadata service); nothing runs it.'),
        ],
        help='What the driver does with a user-data script. Container '
             'images seldom carry cloud-init, so with "expose" a script '
             'such as a Heat wait-condition signal would never run.'),
    cfg.IntOpt(
        'serial_console_idle_timeout',
        default=600,
        min=0,
        help='Seconds without a byte in either direction after which an '
             'interactive serial console session is closed, freeing the '
             'server\'s one console slot for the next user. 0: never.'),
    cfg.ListOpt(
        'serial_console_proxy_addresses',
        default=['127.0.0.1', '::1'],
        help='Source addresses allowed to connect to a server\'s '
             'interactive serial console endpoint: those of the hosts '
             'running nova-serialproxy. Any other connection is closed '
             'before a byte is read or written, so a server that can route '
             'to [serial_console] proxyclient_address (a tenant network '
             'whose gateway is on this host) still cannot reach a console. '
             'The default suits a proxy on the compute host itself; on a '
             'multi-node cloud list the proxy hosts\' management '
             'addresses.'),
]


def register_opts(conf):
    """Register the [docker] options on *conf*."""
    conf.register_group(docker_group)
    conf.register_opts(docker_opts, group=docker_group)


def list_opts():
    """Options for oslo-config-generator: a list of (group, options)."""
    return [(docker_group, docker_opts)]
