from alertq.cli import main

main()
