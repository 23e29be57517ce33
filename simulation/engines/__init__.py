"""Engines that run the same ServerApp and ClientApps: local (default), ray, deployment, and the
centralized ceiling. base.py holds what an engine gets (EngineRun) and the registry by name."""
