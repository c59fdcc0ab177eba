#!/usr/bin/env bash
# Sums gcovr's --txt report (file, lines, executed, percent) per top directory
# (core/tensor, core/nn, ..., core/, bindings/).
awk '$1 ~ /^(core|bindings)\// && NF >= 4 && $2 ~ /^[0-9]+$/ {
  n = split($1, p, "/"); top = p[1]; sub_ = (n > 2) ? p[1] "/" p[2] : p[1];
  L[top] += $2; E[top] += $3; if (sub_ != top) { L[sub_] += $2; E[sub_] += $3 } }
  END { for (k in L) printf "  %-16s %6d / %6d lines  %5.1f%%\n", k, E[k], L[k], 100 * E[k] / L[k] }' "$1" | sort
