"""Dask: a plugin pickled into a real LocalCluster with worker processes, loaded once per worker."""

from __future__ import annotations

from typing import Iterator

import pytest

import wasmforge

dask_bag = pytest.importorskip("dask.bag", reason="the test extra installs dask[distributed]")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client() -> Iterator["distributed.Client"]:
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=2, dashboard_address=None,
                                  worker_dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield client


def kept_plugins() -> int:
    """How many unpickled plugins this worker process keeps open."""
    from wasmforge.runtime import pickling

    return sum(not plugin.closed for plugin in list(pickling._kept.values()))


@pytest.mark.cargo
@pytest.mark.timeout(900)
def test_a_bag_maps_a_plugin_function_like_one_process(demo, client) -> None:
    words = [f"record {n}" for n in range(200)]
    with wasmforge.load(demo.wasm) as plugin:
        expected = [plugin.greet(word) for word in words]
        bag = dask_bag.from_sequence(words, npartitions=8).map(plugin.greet)
        assert bag.compute(scheduler=client) == expected
        lengths = dask_bag.from_sequence(words, npartitions=8).map(plugin.length).compute(scheduler=client)
        assert lengths == [plugin.length(word) for word in words]
    # Eight partitions, two functions, two workers: each worker loaded the plugin once.
    assert set(client.run(kept_plugins).values()) == {1}


@pytest.mark.cargo
@pytest.mark.timeout(900)
def test_a_scattered_plugin_ships_once(demo, client) -> None:
    with wasmforge.load(demo.wasm) as plugin:
        shared = client.scatter(plugin, broadcast=True)
        futures = client.map(lambda n, p: p.add(n, n), range(20), p=shared)
        assert client.gather(futures) == [plugin.add(n, n) for n in range(20)]
