"""Form classes (Flask-WTF): server-side validation with messages per field."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional

from portal.services.passwords import MAX_LENGTH

ROLE_CHOICES = [("admin", "Admin"), ("accountant", "Accountant"), ("viewer", "Viewer")]


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email address."),
                                            Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired("Enter your password."),
                                                     Length(max=MAX_LENGTH)])


class UserCreateForm(FlaskForm):
    email = EmailField("Email", validators=[
        DataRequired("Enter an email address."),
        Email("Enter a valid email address.", check_deliverability=False), Length(max=254)])
    name = StringField("Display name", validators=[Optional(), Length(max=120)])
    role = SelectField("Role", choices=ROLE_CHOICES, default="accountant")


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)


class ResetForm(FlaskForm):
    password = PasswordField("New password", validators=[
        DataRequired("Enter a new password."), Length(max=MAX_LENGTH)])
    confirm = PasswordField("Repeat the new password", validators=[
        DataRequired("Repeat the new password."),
        EqualTo("password", "The two passwords differ.")])
