package main

import "syscall"

const (
	sigterm = syscall.SIGTERM
	sigusr1 = syscall.SIGUSR1
)
