"""The hosts of a training job from ``resourceconfig.json``, and the CPUs this
process may use on its host."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sagetext.contract.channels import read_json
from sagetext.contract.paths import Paths
from sagetext.errors import ClientError


@dataclass(frozen=True)
class Cluster:
    hosts: tuple[str, ...] = ("algo-1",)
    current_host: str = "algo-1"
    network_interface: str | None = None

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> "Cluster":
        hosts = config.get("hosts")
        current = config.get("current_host")
        if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) for h in hosts):
            raise ClientError("resourceconfig.json: 'hosts' must be a non-empty list of host names")
        if current not in hosts:
            raise ClientError(f"resourceconfig.json: current_host={current!r} is not one of hosts {hosts}")
        return cls(tuple(sorted(hosts)), str(current), config.get("network_interface_name"))

    @classmethod
    def load(cls, paths: Paths) -> "Cluster":
        """The job's cluster; a single local host when the file is absent (runs outside SageMaker)."""
        if not paths.resourceconfig_file.exists():
            return cls()
        return cls.parse(read_json(paths.resourceconfig_file))

    @property
    def num_hosts(self) -> int:
        return len(self.hosts)

    @property
    def host_rank(self) -> int:
        return self.hosts.index(self.current_host)

    @property
    def master_host(self) -> str:
        return self.hosts[0]


def cpu_count() -> int:
    """CPUs this process may run on: a container's cpuset, not the host's total (what Python
    3.13's ``os.process_cpu_count`` gives)."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return max(os.cpu_count() or 1, 1)
