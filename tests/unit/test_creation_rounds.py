"""Reference creation rounds: each object waits only for the objects it refers to."""

from __future__ import annotations

from portal.services.batching.types.base import Need
from portal.services.creation import _rounds


def test_objects_wait_only_for_what_they_refer_to() -> None:
    needs = [Need("customer", "Acme (ACME)", {"term": "Net 45"}),
             Need("customer", "Globex (GLX)", {"term": "Net 30"}),  # Net 30 exists
             Need("term", "Net 45", {}),
             Need("item", "Hardware:Laptops", {"Type": "Category"}),
             Need("item", "Hardware:Laptops:X1", {"Type": "Inventory"}),
             Need("item", "Hardware:Docks:D1", {"Type": "Inventory"}),  # its category exists
             Need("item", "Service-Managed", {"Type": "Service"}),
             Need("class", "East:Boston", {}), Need("class", "East", {})]
    rounds = {n.name: number for number, found in _rounds(needs).items() for n in found}
    assert rounds == {"Net 45": 0, "Hardware:Laptops": 0, "Hardware:Docks:D1": 0,
                      "Service-Managed": 0, "East": 0, "Globex (GLX)": 0,
                      "Acme (ACME)": 1, "Hardware:Laptops:X1": 1, "East:Boston": 1}
