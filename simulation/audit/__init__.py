"""Privacy checked empirically (docs/privacy.md, "Audit"): canary persons or windows injected into
training with probability 1/2 each, scored on the released model, and the one-run audit of Steinke,
Nasr and Jagielski (2023) turning the guesses into an empirical epsilon lower bound; and a
loss-threshold membership-inference attack on the real persons.

config ([audit]), canaries (make and inject), one_run (the statistics of the paper),
membership (the attack on real persons), run_audit (all of it for one finished run).
"""
