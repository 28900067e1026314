"""`manage.py regression_check --baseline NAME (--evaluation ID | --run ID)`: the CI gate.

Prints the check (the same fields as POST /api/regression/check) and exits 0 on pass, 1 on fail,
2 on bad input (unknown baseline, evaluation or run; incomparable eval sets; a missing metric).
"""

import json

from django.core.management.base import BaseCommand

from apps.core.errors import DomainError
from apps.evaluations.api.serializers import CheckSerializer
from apps.evaluations.regression import regression_check_request


class Command(BaseCommand):
    help = "Check an evaluation (or a run's latest) against a regression baseline; exit 1 when it fails."

    def add_arguments(self, parser):
        parser.add_argument("--baseline", required=True, help="the baseline's name")
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--evaluation", help="an evaluation id")
        target.add_argument("--run", help="a run id: its latest completed evaluation on the baseline's eval set")

    def handle(self, *args, **options):
        request = {"baseline": options["baseline"]}
        if options["evaluation"]:
            request["evaluation_id"] = options["evaluation"]
        else:
            request["run_id"] = options["run"]
        try:
            check = regression_check_request(data=request)
        except DomainError as exc:
            self.stderr.write(f"regression_check: {exc.message}")
            raise SystemExit(2) from None
        self.stdout.write(json.dumps(CheckSerializer(check).data, indent=2, default=str))
        if check.result == "fail":
            self.stderr.write(f"regression_check: FAIL: {check.metric} {check.current_value:.4f} vs baseline "
                              f"{check.baseline_value:.4f} (allowed regression {check.details['allowed_regression']})")
            raise SystemExit(1)
