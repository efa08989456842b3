from heisen.cli import main

main()
