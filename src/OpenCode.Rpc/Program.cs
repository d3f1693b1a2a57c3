using OpenCode.Rpc.Cli;

return await CliApp.RunAsync(args).ConfigureAwait(false);
