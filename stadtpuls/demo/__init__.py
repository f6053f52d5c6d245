"""``stadtpuls demo``: the simulated city on one machine, and the embedded services the tests fall back to.

:mod:`stadtpuls.demo.cli` is the command; :mod:`stadtpuls.demo.services` brings up the database and broker
(configured or embedded, :mod:`stadtpuls.demo.embedded`); :mod:`stadtpuls.demo.session` opens the ingest's MQTT
session early; :mod:`stadtpuls.demo.supervisor` runs the child processes; :mod:`stadtpuls.demo.feed` is the
simulated city's time-lapse feed; :mod:`stadtpuls.demo.towns` the two towns (tenants) it runs side by side.
Submodules are imported on use, so importing the package stays light.
"""

__all__: list[str] = []
