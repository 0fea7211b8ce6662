"""A simulated Asterisk 22 (AMI + FastAGI) built from lab captures, for tests, demo and benchmarks.

The service under test talks to it over real TCP exactly as it would to
Asterisk; see `ivr.sim.pbx.SimulatedPbx` and `ivr.sim.plan.CallPlan`.
"""

from ivr.sim.agi import AgiLine
from ivr.sim.ami import ALL, LAB_LISTENER_EXCLUDES, AmiAccount, lab_listener
from ivr.sim.call import CallResult
from ivr.sim.pbx import SimulatedPbx
from ivr.sim.plan import Agent, CallPlan, Flow, Press, Turn
from ivr.sim.templates import TemplateLibrary
from ivr.sim.traffic import TRAFFIC_AGENTS, TRAFFIC_QUEUES, random_plan, run_traffic

__all__ = [
    "ALL",
    "LAB_LISTENER_EXCLUDES",
    "TRAFFIC_AGENTS",
    "TRAFFIC_QUEUES",
    "Agent",
    "AgiLine",
    "AmiAccount",
    "CallPlan",
    "CallResult",
    "Flow",
    "Press",
    "SimulatedPbx",
    "TemplateLibrary",
    "Turn",
    "lab_listener",
    "random_plan",
    "run_traffic",
]
