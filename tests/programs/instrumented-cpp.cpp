// SPDX-License-Identifier: MIT
// C++ built with -finstrument-functions: names come back demangled.
#include <cstdio>

namespace geometry {
struct Square {
        double side;
        __attribute__((noinline)) double area() const { return side * side; }
};
__attribute__((noinline)) double total(const Square *s, int n)
{
        double t = 0;
        for (int i = 0; i < n; i++)
                t += s[i].area();
        return t;
}
}

int main()
{
        geometry::Square s[3] = { { 1 }, { 2 }, { 3 } };
        std::printf("%g\n", geometry::total(s, 3));
        return 0;
}
