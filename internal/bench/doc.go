// Package bench is the one engine every benchmark command of this repository
// runs on (cmd/batchbench and its writers subcommand, cmd/quicbench,
// integration/wireguard/cmd/wgbench, and the bench commands of
// examples/miekg-dns and examples/pion-sfu). It owns what they all do,
// once:
//
//   - the rounds ([Run]): every mode once per round, in an order that rotates
//     round by round (A B C, B C A, C A B), a garbage collection before each,
//     an optional warm-up round that is not kept, a mode that cannot run or
//     stops ([Unavailable]) taken out with its reason, and a signal
//     ([SignalContext]) ending the run cleanly after the sample under way;
//   - the clocks: [ThreadCPU] (a locked thread's, CLOCK_THREAD_CPUTIME_ID),
//     [ProcessCPU] (getrusage RUSAGE_SELF), [ChildCPU] (a child process's);
//   - a server measured in a child process of its own ([Child], started
//     with [StartChild]): its address and its CPU time asked over its
//     stdin and stdout, which its side answers with [ServeControl];
//   - the figures: medians and min–max over the rounds ([Of], [Summarize]),
//     medians of same-round ratios ([Ratio]), never quotients of medians,
//     because the machines are shared and a busy moment hits both modes of
//     a round alike;
//   - targets as data ([Target], [Check], [Goal]), printed met or MISSED
//     the same way everywhere ([WriteTargets], [Target.Tag]);
//   - the outputs: an aligned text table ([WriteTable]), -json
//     ([WriteJSON]), -format gobench for benchstat ([WriteGobenchLine]),
//     -svg bar charts ([Chart]), the flags that ask for them ([Output]),
//     a progress line on a terminal ([Plan.Progress]), and the command-line
//     plumbing ([Parse], [Exit], [RunCommand], [ParseBytes], [ParseQueue],
//     [ParseList], [ParseCounts], [Choices]).
//
// Their tests share package benchtest (the flag-table check) and
// [SVGBars] (a chart's bars read back).
//
// # Adding a benchmark
//
// A benchmark is a command with its own flags, a sample type and modes (the
// package Example is a whole one):
//
//  1. The sample type S is a struct of what one measurement produces:
//     queries answered, elapsed time, CPU time.
//  2. A [Mode] is a name and Sample, which measures once and returns an S,
//     with optional Setup and Teardown around it that are not measured
//     (open a fresh socket, start a server process, close them). Modes
//     compared with each other form a [Group]; a matrix (connections × GSO
//     on/off) is a group per cell. [Run] runs a [Plan] of them.
//  3. A [Report] declares the figures as [Column] values (a function of S
//     and a format; or a ratio of a figure against a reference mode) and
//     the targets as [Goal] values, and writes what the output flags
//     ([Output]: -format, -json, -q, -svg) ask for.
//  4. main parses the flags with [Parse] and [Output.Check], runs under
//     [SignalContext], and exits with [Exit] (0, 1, or 2 for a bad flag).
//
// [Report] prints the table (a row per mode: each figure's median, the
// min–max where asked, each ratio column's median of same-round ratios,
// the targets), the JSON (a mode's samples and each column's summary under
// its key), the gobench lines and the chart, so a benchmark writes no output
// code, only its head and notes: batchbench's send and -recv tables are
// Reports. Tables of another shape (a row per cell with the modes side by
// side: batchbench writers, quicbench; wgbench's) build their rows from
// [Of] and [Ratio], print them with [WriteTable] or their own format, and
// check their targets with [Check].
//
// Errors: a Setup or Sample error wrapped in [Unavailable] takes the mode out
// (the table says why) and the run goes on; any other error ends the run,
// named by round, mode and group. A nested module under examples/ may import
// this package (Go's internal rule is by import path) if its go.mod requires
// the root module and replaces it with ../.., as integration/wireguard's does.
//
// Round numbers start at 1; round 0 is the warm-up. Adding a mode to an
// existing benchmark is adding one Mode to its group (batchbench writers:
// one entry in writersModes).
package bench
