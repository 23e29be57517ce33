"""Time-use estimation as the simulation drives it: the sensor-only sample prepared beside the
data (prepare), the estimate judged against the truth only the simulation knows (evaluate), and
the benchmark of the targets over seeds (bench/time_use.py). The estimation itself runs in the
NSOs' ClientApps (clients/estimation) and the coordinator's ServerApp (server/time_use.py).
"""
