"""The smallest useful third-party plugin: a script ``greeter`` that writes a greeting, and an
aggregator ``greetings`` that collects them. It imports nothing from timecal but the contract."""

import sys

from timecal_core.contract.hookspecs import (Aggregator, Parameter, ProductionScript, Step,
                                             TaskPlan, hookimpl)


def _plan(request):
    code = "import sys; open('hello.txt', 'w').write('hello ' + sys.argv[1])"
    return TaskPlan(steps=(Step("greet", (sys.executable, "-c", code, request.params["name"])),),
                    output="hello.txt")


def _collect(request):
    out = request.production_dir / "greetings.txt"
    out.write_text("".join(t.output.read_text() + "\n" for t in request.tasks))
    return [out]


@hookimpl
def timecal_scripts():
    yield ProductionScript("greeter", (Parameter("name", "str", "world", "who to greet"),), _plan,
                           description="writes hello <name>")


@hookimpl
def timecal_aggregators():
    yield Aggregator("greetings", _collect, description="all greetings in one file")
