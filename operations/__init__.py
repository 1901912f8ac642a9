"""What an operator does across the apps: the status document (``status``) and the admin's
dashboard made from it (``dashboard``), the demo (``demo``), an initiative's export and
import (``transfer``), their commands (``cw_status``, ``cw_demo``, ``cw_export``,
``cw_import``), and the plan's pages completed with the agents and reviews (``admin``).

The top app: it builds on ``reviews``, ``agents`` and ``core``, and none of them imports it.
It has no models of its own.
"""
