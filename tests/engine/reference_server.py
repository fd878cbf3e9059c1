"""Answer evaluation contexts with the reference engine, one JSON line in, one JSON line out.

Run by the reference virtualenv's interpreter (see ``reference_env.sh``), never imported by the
test suite: the main environment holds a different engine version. Each input line is an
evaluation context; each output line is ``{"result": ...}`` or, when the reference raised,
``{"error": "<exception type>: <message>"}``.
"""

import json
import sys

from flag_engine.engine import get_evaluation_result


def main() -> None:
    """Serve until stdin closes."""
    for line in sys.stdin:
        if not line.strip():
            continue
        context = json.loads(line)
        try:
            answer = {"result": get_evaluation_result(context)}
        except Exception as exc:  # the reference may raise on any bad input; report, don't die
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
