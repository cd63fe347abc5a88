//go:build linux

package main

func hostDemoMain(args []string) int { return 2 }
