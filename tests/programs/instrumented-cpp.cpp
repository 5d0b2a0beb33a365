// SPDX-License-Identifier: MIT
// C++ built with -finstrument-functions: names come back demangled, and an
// exception thrown through six frames (`instrumented-cpp throw`) unwinds
// them through their exit hooks, and a template's name longer than any
// span name may be (`instrumented-cpp long`) arrives cut, not refused.
#include <cstdio>
#include <cstring>
#include <stdexcept>

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

__attribute__((noinline)) void thrower(int n)
{
        if (n == 0)
                throw std::runtime_error("out");
        thrower(n - 1);
}

__attribute__((noinline)) int leaf(int x)
{
        return x * 2;
}

__attribute__((noinline)) int guarded(int i)
{
        try {
                thrower(5);
        } catch (const std::exception &) {
                return leaf(i);
        }
        return 0;
}

template <typename T> struct Wrapper_whose_name_is_long_enough_to_make_symbols_grow {
        T value;
};
template <typename T> using W = Wrapper_whose_name_is_long_enough_to_make_symbols_grow<T>;
using Deep = W<W<W<W<W<W<W<W<W<W<W<W<int>>>>>>>>>>>>;

template <typename T> __attribute__((noinline)) int long_named(const T &t)
{
        return sizeof(t) > 0;
}

int main(int argc, char **argv)
{
        if (argc > 1 && std::strcmp(argv[1], "long") == 0) {
                Deep d = {};
                int n = 0;
                for (int i = 0; i < 100; i++)
                        n += long_named(d);
                return n == 100 ? 0 : 1;
        }
        if (argc > 1 && std::strcmp(argv[1], "throw") == 0) {
                long s = 0;
                for (int i = 0; i < 1000; i++)
                        s += guarded(i);
                return s == 999000 ? 0 : 1;
        }
        geometry::Square s[3] = { { 1 }, { 2 }, { 3 } };
        std::printf("%g\n", geometry::total(s, 3));
        return 0;
}
