from dsparsers.cli import main

main()
