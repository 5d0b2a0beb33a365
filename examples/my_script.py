# SPDX-License-Identifier: MIT
"""The README's Python example: a script that knows nothing of Ferret.
`ferret run examples/my_script.py` records a span per call of its functions."""


def parse(line):
    return [int(x) for x in line.split(",")]


def total(rows):
    return sum(sum(r) for r in rows)


def main():
    rows = [parse(f"{i},{i * 2},{i * 3}") for i in range(2000)]
    print("total:", total(rows))


if __name__ == "__main__":
    main()
