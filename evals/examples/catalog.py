"""The list of bundled examples, in dataset order."""

from agentkit.evals.examples import datekit, docsnip, eventlog, miniconf, pagekit, spans, units
from agentkit.evals.examples.spec import ExampleSpec

EXAMPLES: tuple[ExampleSpec, ...] = (
    pagekit.EXAMPLE,
    datekit.EXAMPLE,
    miniconf.EXAMPLE,
    eventlog.EXAMPLE,
    spans.EXAMPLE,
    units.EXAMPLE,
    docsnip.EXAMPLE,
)
