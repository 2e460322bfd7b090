# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""EdgeNet's role's filters (the logic is in plugins/module_utils/frameworks/edgenet.py).

- ``manifests_text | fedbench.testbed.edgenet_crd``: the SelectiveDeployment
  CRD from EdgeNet's manifests, fixed to take the status its controller sends.
- ``node | fedbench.testbed.edgenet_labels(sites, cluster_index, node_names)``:
  a node's location labels (cluster i is site i; its nodes spread over the
  site's cities).
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.fedbench.testbed.plugins.module_utils.frameworks import edgenet


def edgenet_crd(manifests):
    try:
        return edgenet.fixed_crd(str(manifests))
    except (ValueError, KeyError) as exc:
        raise AnsibleFilterError(f"edgenet_crd: {exc}") from exc


def edgenet_labels(node, sites, cluster_index, nodes):
    try:
        return edgenet.site_labels(str(node), list(sites), int(cluster_index), list(nodes))
    except (ValueError, KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"edgenet_labels: {exc} (check edgenet_sites)") from exc


class FilterModule:
    def filters(self):
        return {"edgenet_crd": edgenet_crd, "edgenet_labels": edgenet_labels}
