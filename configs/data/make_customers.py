"""Writes customers.csv, the table of configs/tabular_csv.yaml: 400 made-up customers with
numeric, categorical and missing values, and whether they left (``churned``).

    python configs/data/make_customers.py    # seeded: the same file every time
"""
from pathlib import Path

import numpy as np

CITIES = ["paris", "lyon", "rome", "oslo", "berlin"]
PLANS = ["basic", "pro", "premium"]


def main(n: int = 400) -> None:
    rng = np.random.default_rng(15)
    age = rng.integers(18, 80, n)
    income = np.round(rng.lognormal(3.5, 0.4, n), 1)
    web = rng.poisson(6, n)
    store = rng.poisson(2, n)
    city = rng.choice(CITIES, n, p=[0.35, 0.25, 0.2, 0.1, 0.1])
    plan = rng.choice(PLANS, n, p=[0.5, 0.3, 0.2])
    score = (-0.04 * (age - 45) + 0.6 * (plan == "basic") - 0.5 * (plan == "premium")
             - 0.25 * (web - 6) + 0.8 * (city == "oslo") + rng.normal(0, 0.5, n))
    churned = np.where(score > 0.3, "yes", "no")
    rows = ["age,income,city,plan,visits_web,visits_store,churned"]
    for i in range(n):
        a = "" if rng.random() < 0.08 else str(age[i])
        m = "NA" if rng.random() < 0.08 else str(income[i])
        rows.append(f"{a},{m},{city[i]},{plan[i]},{web[i]},{store[i]},{churned[i]}")
    (Path(__file__).parent / "customers.csv").write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
