// The Azure DevOps document's Express app (seeds/003, "Application Code",
// lib/revoke-token.js), kept as written: express + express-session, form posts
// built with querystring exactly as the document builds them, no OAuth library.
// What changes is only where it points: the OAuth host (the document's
// app.vssps.visualstudio.com; its /oauth2/* paths are kept) and the API host
// (dev.azure.com), whose paths are the platform's own API (here the demo
// resource, /api/v1/me and /api/v1/posts). For local tests the hosts are
// http; a `now` option lets a test move the app's clock so that its
// requireAuth refreshes, as it would 55 minutes later.
import express from "express";
import session from "express-session";
import http from "node:http";
import https from "node:https";
import querystring from "node:querystring";
import crypto from "node:crypto";

export function createApp(options) {
  var app = express();
  var CLIENT_ID = options.clientId;
  var CLIENT_SECRET = options.clientSecret;
  var CALLBACK_URL = options.callbackUrl;
  var SESSION_SECRET = crypto.randomBytes(32).toString("hex");
  var SCOPES = options.scopes || "vso.work vso.build vso.code vso.project vso.profile";
  var AUTH = new URL(options.authBase); // was https://app.vssps.visualstudio.com
  var API = new URL(options.apiBase); // was https://dev.azure.com
  var now = options.now || Date.now;
  var transport = function (host) {
    return host.protocol === "https:" ? https : http;
  };

  app.use(
    session({
      secret: SESSION_SECRET,
      resave: false,
      saveUninitialized: false,
      cookie: { secure: false, maxAge: 24 * 60 * 60 * 1000 },
    }),
  );
  app.use(express.json());

  // Home page
  app.get("/", function (req, res) {
    if (req.session.tokens) {
      res.send("<h1>Azure DevOps Dashboard</h1><p><a href=\"/dashboard\">View Dashboard</a></p>");
    } else {
      res.send("<h1>Azure DevOps Dashboard</h1><p><a href=\"/auth/login\">Login with Azure DevOps</a></p>");
    }
  });

  // Step 1: Redirect to Azure DevOps authorization
  app.get("/auth/login", function (req, res) {
    var state = crypto.randomBytes(16).toString("hex");
    req.session.oauthState = state;
    var authUrl =
      AUTH.origin +
      "/oauth2/authorize?" +
      querystring.stringify({
        client_id: CLIENT_ID,
        response_type: "Assertion",
        state: state,
        scope: SCOPES,
        redirect_uri: CALLBACK_URL,
      });
    res.redirect(authUrl);
  });

  // Step 2: Handle the callback
  app.get("/auth/callback", function (req, res) {
    if (req.query.error) {
      console.log("User denied authorization:", req.query.error_description);
      return res.send("Authorization was denied. <a href='/'>Try again</a>");
    }
    var code = req.query.code;
    var state = req.query.state;
    if (state !== req.session.oauthState) {
      return res.status(403).send("Invalid state parameter. Possible CSRF attack.");
    }
    if (!code) {
      return res.status(400).send("Authorization failed. No code received.");
    }
    // Step 3: Exchange code for tokens
    exchangeCodeForTokens(code, function (err, tokens) {
      if (err) {
        return res.status(500).send("Authentication failed: " + err.message);
      }
      req.session.tokens = tokens;
      req.session.tokenExpiry = now() + parseInt(tokens.expires_in, 10) * 1000;
      fetchProfile(tokens.access_token, function (err2, profile) {
        if (!err2) req.session.profile = profile;
        res.redirect("/dashboard");
      });
    });
  });

  // Token exchange helper
  function exchangeCodeForTokens(code, callback) {
    var body = querystring.stringify({
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: CLIENT_SECRET,
      grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
      assertion: code,
      redirect_uri: CALLBACK_URL,
    });
    post("/oauth2/token", body, "Token exchange failed", callback);
  }

  // Token refresh helper
  function refreshAccessToken(refreshToken, callback) {
    var body = querystring.stringify({
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: CLIENT_SECRET,
      grant_type: "refresh_token",
      assertion: refreshToken,
      redirect_uri: CALLBACK_URL,
    });
    post("/oauth2/token", body, "Token refresh failed", callback);
  }

  function post(path, body, what, callback) {
    var options = {
      hostname: AUTH.hostname,
      port: AUTH.port,
      path: path,
      method: "POST",
      headers: {
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": Buffer.byteLength(body),
      },
    };
    var req = transport(AUTH).request(options, function (res) {
      var data = "";
      res.on("data", function (chunk) {
        data += chunk;
      });
      res.on("end", function () {
        if (res.statusCode === 200) {
          try {
            callback(null, JSON.parse(data));
          } catch (e) {
            callback(new Error("Failed to parse token response"));
          }
        } else {
          callback(new Error(what + " (" + res.statusCode + "): " + data));
        }
      });
    });
    req.on("error", callback);
    req.write(body);
    req.end();
  }

  // Middleware: ensure authenticated and refresh token if needed
  function requireAuth(req, res, next) {
    if (!req.session.tokens) {
      return res.redirect("/auth/login");
    }
    if (req.session.tokenExpiry && now() > req.session.tokenExpiry - 300000) {
      refreshAccessToken(req.session.tokens.refresh_token, function (err, newTokens) {
        if (err) {
          req.session.destroy(function () {});
          return res.redirect("/auth/login?refresh_failed=" + encodeURIComponent(err.message));
        }
        req.session.tokens = newTokens;
        req.session.tokenExpiry = now() + parseInt(newTokens.expires_in, 10) * 1000;
        res.setHeader("X-Refreshed", "1");
        next();
      });
    } else {
      next();
    }
  }

  // Azure DevOps API helper
  function devopsAPI(accessToken, path, callback) {
    var options = {
      hostname: API.hostname,
      port: API.port,
      path: path,
      method: "GET",
      headers: {
        Authorization: "Bearer " + accessToken,
        Accept: "application/json",
      },
    };
    var req = transport(API).request(options, function (res) {
      var data = "";
      res.on("data", function (chunk) {
        data += chunk;
      });
      res.on("end", function () {
        if (res.statusCode === 200) {
          try {
            callback(null, JSON.parse(data));
          } catch (e) {
            callback(new Error("Parse error"));
          }
        } else {
          callback(new Error("API error " + res.statusCode + ": " + data.substring(0, 200)));
        }
      });
    });
    req.on("error", callback);
    req.end();
  }

  // Fetch user profile (the platform's profile endpoint)
  function fetchProfile(accessToken, callback) {
    devopsAPI(accessToken, "/api/v1/me", callback);
  }

  // Dashboard route: one API call with the session's token
  app.get("/dashboard", requireAuth, function (req, res) {
    var accessToken = req.session.tokens.access_token;
    devopsAPI(accessToken, "/api/v1/posts", function (err, data) {
      if (err) {
        return res.status(500).send("Failed to fetch posts: " + err.message);
      }
      var profile = req.session.profile || { user: {} };
      res.send("<h1>Dashboard</h1><p>Welcome, " + profile.user.email + "</p><p>org " + data.org + "</p>");
    });
  });

  // lib/revoke-token.js
  function revokeToken(accessToken, callback) {
    var body = querystring.stringify({
      token: accessToken,
      token_type_hint: "access_token",
    });
    var options = {
      hostname: AUTH.hostname,
      port: AUTH.port,
      path: "/oauth2/revoke",
      method: "POST",
      headers: {
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": Buffer.byteLength(body),
        Authorization: "Bearer " + accessToken,
      },
    };
    var req = transport(AUTH).request(options, function (res) {
      res.on("data", function () {});
      res.on("end", function () {
        callback(null, res.statusCode);
      });
    });
    req.on("error", callback);
    req.write(body);
    req.end();
  }

  // Logout: "Implement a logout endpoint that revokes tokens ... both the
  // access token and refresh token" (the document's best practices).
  app.get("/auth/logout", function (req, res) {
    var tokens = req.session.tokens;
    if (!tokens) return res.redirect("/");
    revokeToken(tokens.access_token, function (err, accessStatus) {
      revokeToken(tokens.refresh_token, function (err2, refreshStatus) {
        req.session.destroy(function () {
          res.json({ access: accessStatus, refresh: refreshStatus, tokens: tokens });
        });
      });
    });
  });

  return app;
}

/**
 * Start the app on a free loopback port, its CALLBACK_URL on that port
 * (a loopback redirect URI matches the registered one on any port, RFC 8252).
 * Resolves to { base, close }.
 */
export function startApp(options) {
  var server = http.createServer();
  return new Promise(function (resolve) {
    server.listen(0, "127.0.0.1", function () {
      var base = "http://127.0.0.1:" + server.address().port;
      server.on("request", createApp({ ...options, callbackUrl: base + "/auth/callback" }));
      resolve({
        base: base,
        close: function () {
          return new Promise(function (r) {
            server.closeAllConnections();
            server.close(function () {
              r();
            });
          });
        },
      });
    });
  });
}
