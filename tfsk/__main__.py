from tfsk.cli import main

main()
