"""``make serve``'s processes keep what start-up made out of the garbage collector's
passes (``cw_project.asgi.freeze_startup_heap``): a full pass walks only what requests
made, instead of pausing the event loop to walk all of Django and the API."""

import gc

from cw_project import asgi


def test_what_start_up_made_is_frozen_out_of_the_collectors_passes():
    assert asgi.application is not None  # the module built the application, and froze
    assert gc.get_freeze_count() > 10_000

    alive = [["made before the freeze"]]
    assert gc.is_tracked(alive)
    assert any(found is alive for found in gc.get_objects())
    frozen_before = gc.get_freeze_count()

    asgi.freeze_startup_heap()

    assert gc.get_freeze_count() > frozen_before
    assert not any(found is alive for found in gc.get_objects())
    later = [["made after the freeze"]]
    assert any(found is later for found in gc.get_objects())
